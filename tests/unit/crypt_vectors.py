#!/usr/bin/python3
# Expected dm-crypt ciphertext for tests/unit/test_crypt.c, computed once, independently of partmap:
# CBC, ECB, CTR and the ESSIV salt/IV with the openssl command line, XTS (which `openssl enc` lacks) with
# python3-cryptography. Writes tests/unit/crypt_vectors.h: each case is a table line over device 7:0
# and the SHA-256 of the bytes the kernel's dm-crypt leaves on that device when the target's plaintext
# is pt(i) (see below). "reverse" cases (XTS keys with equal halves, which OpenSSL will not encrypt
# with) hold ct(i) on the device and the digest of the plaintext it decrypts to.
#   usage: tests/unit/crypt_vectors.py > tests/unit/crypt_vectors.h
import hashlib, subprocess, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def pt(i): return (i * 131 + (i >> 9) * 17 + 7) & 0xff
def ct(i): return (i * 37 + 11 + (i >> 12)) & 0xff
def key(n, seed): return bytes((seed * 29 + j * 7 + 3) & 0xff for j in range(n))

def ossl(args, data):
    return subprocess.run(['openssl'] + args, input=data, stdout=subprocess.PIPE, check=True).stdout

def essiv_iv(sub, sector, md):
    salt = ossl(['dgst', '-' + md, '-binary'], sub)
    blk = sector.to_bytes(8, 'little') + bytes(8)
    return ossl(['enc', '-aes-%d-ecb' % (len(salt) * 8), '-K', salt.hex(), '-nopad'], blk)

def make_iv(ivmode, sub, s, chain):
    if ivmode in ('none', 'null'):
        return bytes(16)
    if ivmode == 'plain':
        return (s & 0xffffffff).to_bytes(4, 'little') + bytes(12)
    if ivmode == 'plain64':
        return (s & (2**64 - 1)).to_bytes(8, 'little') + bytes(8)
    if ivmode == 'plain64be':
        return bytes(8) + (s & (2**64 - 1)).to_bytes(8, 'big')
    if ivmode.startswith('essiv:'):
        return essiv_iv(sub, s, ivmode[6:])
    if ivmode == 'benbi':
        shift = 9 if chain == 'ctr' else 5
        return bytes(8) + (((s << shift) + 1) & (2**64 - 1)).to_bytes(8, 'big')
    raise ValueError(ivmode)

def sector_crypt(chain, sub, iv, data, enc):
    if chain == 'null':
        return data
    if chain == 'xts':
        c = Cipher(algorithms.AES(sub), modes.XTS(iv))
        x = c.encryptor() if enc else c.decryptor()
        return x.update(data) + x.finalize()
    args = ['enc', '-aes-%d-%s' % (len(sub) * 8, chain), '-K', sub.hex(), '-nopad']
    if chain != 'ecb':
        args += ['-iv', iv.hex()]
    if not enc:
        args.append('-d')
    return ossl(args, data)

def run(chain, ivmode, k, tfms, iv_offset, nsect, ss, large, data, enc):
    out = b''
    sub_len = len(k) // tfms
    for o in range(0, nsect * 512, ss):
        s512 = o // 512 + iv_offset
        sub = k[(s512 % tfms) * sub_len:(s512 % tfms + 1) * sub_len]
        ivs = s512 >> (ss.bit_length() - 10) if large else s512
        iv = make_iv(ivmode, sub, ivs, chain) if chain != 'ecb' else None
        out += sector_crypt(chain, sub, iv, data[o:o + ss], enc)
    return out

# spec, (chain, ivmode) for the model, key, iv_offset, sectors, options, reverse
Z64 = bytes(64)
EQ32 = key(16, 9) * 2
cases = [
    ('aes', 'cbc', 'plain', key(16, 1), 0, 8, '', False),
    ('aes-plain', 'cbc', 'plain', key(32, 2), 3, 8, '', False),
    ('aes-cbc-plain', 'cbc', 'plain', key(24, 3), 0, 8, '', False),
    ('aes-cbc-plain', 'cbc', 'plain', key(16, 4), 4294967294, 8, '', False),
    ('aes-cbc-plain64', 'cbc', 'plain64', key(16, 4), 4294967294, 8, '', False),
    ('aes-cbc-plain64', 'cbc', 'plain64', key(32, 5), 0, 8, '', False),
    ('aes-cbc-plain64be', 'cbc', 'plain64be', key(16, 6), 7, 8, '', False),
    ('aes-cbc-essiv:sha256', 'cbc', 'essiv:sha256', key(16, 7), 0, 8, '', False),
    ('aes-cbc-essiv:sha256', 'cbc', 'essiv:sha256', key(32, 8), 100, 8, '', False),
    ('aes-cbc-essiv:md5', 'cbc', 'essiv:md5', key(24, 8), 1, 8, '', False),
    ('aes-cbc-benbi', 'cbc', 'benbi', key(16, 9), 9, 8, '', False),
    ('aes-cbc-null', 'cbc', 'null', key(16, 10), 5, 8, '', False),
    ('aes-xts-plain64', 'xts', 'plain64', key(64, 11), 0, 8, '', False),
    ('aes-xts-plain64', 'xts', 'plain64', key(32, 12), 11, 8, '', False),
    ('aes-xts-plain', 'xts', 'plain', key(64, 13), 4294967294, 8, '', False),
    ('aes-xts-plain64be', 'xts', 'plain64be', key(64, 14), 1, 8, '', False),
    ('aes-xts-essiv:sha256', 'xts', 'essiv:sha256', key(64, 15), 2, 8, '', False),
    ('aes-xts-benbi', 'xts', 'benbi', key(32, 16), 3, 8, '', False),
    ('aes-xts-null', 'xts', 'null', key(32, 16), 3, 8, '', False),
    ('aes-ecb', 'ecb', 'none', key(16, 17), 0, 8, '', False),
    ('aes-ecb-plain', 'ecb', 'none', key(32, 18), 6, 8, '', False),
    ('capi:cbc(aes)-plain64', 'cbc', 'plain64', key(32, 19), 2, 8, '', False),
    ('capi:cbc(aes)-plain', 'cbc', 'plain', key(16, 19), 2, 8, '', False),
    ('capi:cbc(aes)-plain64be', 'cbc', 'plain64be', key(16, 19), 2, 8, '', False),
    ('capi:cbc(aes)-benbi', 'cbc', 'benbi', key(16, 19), 2, 8, '', False),
    ('capi:cbc(aes)-null', 'cbc', 'null', key(16, 19), 2, 8, '', False),
    ('capi:xts(aes)-plain64', 'xts', 'plain64', key(64, 20), 0, 8, '', False),
    ('capi:ecb(aes)', 'ecb', 'none', key(24, 21), 0, 8, '', False),
    ('capi:cbc(aes)-essiv:sha256', 'cbc', 'essiv:sha256', key(16, 22), 0, 8, '', False),
    ('capi:ctr(aes)-plain64', 'ctr', 'plain64', key(16, 23), 5, 8, '', False),
    ('aes-ctr-benbi', 'ctr', 'benbi', key(16, 24), 5, 8, '', False),
    ('capi:xts(aes)-plain64', 'xts', 'plain64', key(64, 25), 16, 32, '1 sector_size:4096', False),
    ('aes-xts-plain64', 'xts', 'plain64', key(64, 25), 16, 32, '2 sector_size:4096 iv_large_sectors', False),
    ('aes-cbc-essiv:sha256', 'cbc', 'essiv:sha256', key(16, 26), 8, 32, '2 iv_large_sectors sector_size:4096', False),
    ('aes-cbc-plain', 'cbc', 'plain', key(32, 27), 4, 16, '1 sector_size:2048', False),
    ('aes:2-cbc-plain64', 'cbc', 'plain64', key(32, 28), 1, 8, '', False),
    ('aes:4-xts-plain64', 'xts', 'plain64', key(128, 29), 0, 8, '', False),
    ('cipher_null-ecb', 'null', 'none', b'', 0, 8, '', False),
    ('aes-xts-plain64', 'xts', 'plain64', Z64, 0, 8, '', True),
    ('capi:xts(aes)-plain64', 'xts', 'plain64', EQ32, 8, 16, '1 sector_size:4096', True),
    ('aes-xts-essiv:sha256', 'xts', 'essiv:sha256', Z64, 0, 8, '', True),
    # requests of 256 KiB and more, shared in parts of 128 KiB with helper threads (the last part short)
    ('aes-xts-plain64', 'xts', 'plain64', key(64, 30), 5, 2300, '', False),
    ('aes-cbc-essiv:sha256', 'cbc', 'essiv:sha256', key(32, 31), 0, 600, '', False),
    ('capi:xts(aes)-plain64', 'xts', 'plain64', key(64, 32), 8, 1032, '1 sector_size:4096', False),
    ('aes-xts-plain64', 'xts', 'plain64', Z64, 0, 1100, '', True),
]

START = 3
print('/* Generated by tests/unit/crypt_vectors.py (openssl CLI, python3-cryptography): do not edit. */')
print('static const struct crypt_vector {\n\tconst char *table;\n\tunsigned start, sectors;'
      '\n\tint reverse;\n\tconst char *sha256;\n} crypt_vectors[] = {')
for spec, chain, ivmode, k, ivo, nsect, opts, rev in cases:
    ss = 512
    for o in opts.split():
        if o.startswith('sector_size:'):
            ss = int(o[12:])
    large = 'iv_large_sectors' in opts.split()
    tfms = int(spec.split('-')[0].split(':')[1]) if ':' in spec.split('-')[0] and not spec.startswith('capi:') else 1
    n = nsect * 512
    if rev:
        data = run(chain, ivmode, k, tfms, ivo, nsect, ss, large, bytes(ct(i) for i in range(n)), False)
    else:
        data = run(chain, ivmode, k, tfms, ivo, nsect, ss, large, bytes(pt(i) for i in range(n)), True)
    # the device area starts on a logical block of the mapped device (the kernel refuses others)
    start = START if ss == 512 else ss // 512
    table = '0 %d crypt %s %s %d 7:0 %d%s' % (nsect, spec, k.hex() if k else '-', ivo, start,
                                            ' ' + opts if opts else '')
    print('\t{ "%s", %d, %d, %d, "%s" },' % (table, start, nsect, int(rev), hashlib.sha256(data).hexdigest()))
print('};')
