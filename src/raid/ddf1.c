/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ddf1: SNIA DDF 1.x (big-endian; dmraid also takes a little-endian copy), as dmraid reads it and
 * mdadm writes it. The anchor header at LBA N-1 (or N-257) points to the primary header, whose
 * sections (relative to it) hold the physical drives, the virtual drives, the configuration records
 * and this disk's own reference. Every header, section and record carries a CRC-32, checked here.
 * One group record per disk (.ddf1_disks) and one record per virtual drive the disk is in.
 * Facts: ../shared/reference/dmraid.md §1.2. */
#include "raid.h"

#include "../ptable.h"
#include "../util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DDF_SIG 0xDE11DE11u
#define DDF_PD_SIG 0x22222222u
#define DDF_DD_SIG 0x33333333u
#define DDF_VD_SIG 0xDDDDDDDDu
#define DDF_CR_SIG 0xEEEEEEEEu
#define DDF_SECTION_MAX (32u << 20) /* a section larger than this is not a real one */

struct ddf {
	struct pm_disk *d;
	bool le;
	char *why;
	size_t whylen;
};

static void why_set(struct ddf *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why_set(struct ddf *x, const char *fmt, ...)
{
	va_list ap;
	if (!x->why || !x->whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(x->why, x->whylen, fmt, ap);
	va_end(ap);
}

static uint16_t g16(const struct ddf *x, const uint8_t *p) { return x->le ? pm_raid_le16(p) : pm_raid_be16(p); }
static uint32_t g32(const struct ddf *x, const uint8_t *p) { return x->le ? pm_raid_le32(p) : pm_raid_be32(p); }
static uint64_t g64(const struct ddf *x, const uint8_t *p) { return x->le ? pm_raid_le64(p) : pm_raid_be64(p); }

/* The CRC of a header, section or record, with its crc field (at 4) set to all ones: the CRC-32
 * register started at 0 and not inverted at the end, as mdadm writes it (the VM: mdadm's DDF anchor
 * and headers), or the usual CRC-32 (started at all ones, inverted). */
static bool crc_ok(const struct ddf *x, const uint8_t *buf, size_t len)
{
	static const uint8_t ones[4] = { 0xFF, 0xFF, 0xFF, 0xFF };
	uint32_t want = g32(x, buf + 4);
	for (int v = 0; v < 2; v++) {
		/* pm_crc32 inverts before and after: started from ~0, inverted again, the register is raw */
		uint32_t c = pm_crc32(v ? 0xFFFFFFFFu : 0, buf, 4);
		c = pm_crc32(c, ones, 4);
		c = pm_crc32(c, buf + 8, len - 8);
		if ((v ? ~c : c) == want)
			return true;
	}
	return false;
}

/* Read a section of `sectors` sectors at LBA lba, checked to lie on the disk and to be sane. */
static int read_section(struct ddf *x, uint64_t lba, uint32_t sectors, uint8_t **out, const char *what)
{
	uint64_t n = pm_disk_sectors(x->d);
	if (!sectors || sectors > DDF_SECTION_MAX / 512 || lba >= n || sectors > n - lba) {
		why_set(x, "ddf1: %s section (%u sectors at %llu) is not on the disk", what, sectors,
			(unsigned long long)lba);
		return -EBADMSG;
	}
	uint8_t *b = malloc((size_t)sectors * 512);
	if (!b)
		return -ENOMEM;
	int r = pm_disk_read(x->d, lba * 512, b, (size_t)sectors * 512);
	if (r < 0) {
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

static enum pm_raid_status pd_status(uint16_t st)
{
	if (st & 0x72)
		return PM_RS_BROKEN;
	if (st & 0x04)
		return PM_RS_NOSYNC;
	if (st & 0x08)
		return PM_RS_SETUP;
	if (st & 0x01)
		return PM_RS_OK;
	return PM_RS_UNDEF;
}

/* dmraid's name of a virtual drive: ddf1_<name> (trailing non-graphic characters cut), or the GUID
 * in hex when it has no name (LSI GUIDs with characters 32..39 made constant, as Debian's dmraid). */
static void vd_name(const uint8_t *vd, char *out, size_t len)
{
	char name[17];
	memcpy(name, vd + 0x30, 16);
	name[16] = 0;
	size_t l = strnlen(name, 16);
	while (l && !(name[l - 1] > ' ' && name[l - 1] < 0x7F))
		name[--l] = 0;
	if (l) {
		snprintf(out, len, "ddf1_%s", name);
	} else {
		char hex[49];
		for (int i = 0; i < 24; i++)
			snprintf(hex + 2 * i, 3, "%02x", vd[i]);
		if (!memcmp(vd, "LSI", 3))
			memcpy(hex + 32, "47114711", 8);
		snprintf(out, len, "ddf1_%s", hex);
	}
	pm_raid_mk_alphanum(out + 5);
}

static int ddf1_read(struct pm_disk *dk, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		     size_t whylen)
{
	(void)serial; /* members are known by the reference in their own disk data record */
	struct ddf x = { .d = dk, .why = why, .whylen = whylen };
	uint64_t n = pm_disk_sectors(dk);
	uint8_t anchor[512], hdr[512];
	bool found = false;
	int r;

	for (int i = 0; i < 2 && !found; i++) {
		uint64_t back = i ? 257 : 1;
		if (n < back + 1)
			break;
		if ((r = pm_disk_read512(dk, n - back, anchor)) < 0)
			return r;
		if (anchor[0] == 0xDE && anchor[1] == 0x11 && pm_raid_be32(anchor) == DDF_SIG)
			found = true, x.le = false;
		else if (anchor[0] == 0x11 && anchor[1] == 0xDE && pm_raid_le32(anchor) == DDF_SIG)
			found = true, x.le = true;
	}
	if (!found)
		return 0;
	if (!crc_ok(&x, anchor, 512)) {
		why_set(&x, "ddf1: anchor header CRC wrong");
		return -EBADMSG;
	}
	uint64_t plba = g64(&x, anchor + 0x60);
	if (plba >= n) {
		why_set(&x, "ddf1: primary header at %llu, past the disk's end", (unsigned long long)plba);
		return -EBADMSG;
	}
	if ((r = pm_disk_read512(dk, plba, hdr)) < 0)
		return r;
	if (g32(&x, hdr) != DDF_SIG) {
		why_set(&x, "ddf1: no primary header at %llu", (unsigned long long)plba);
		return -EBADMSG;
	}
	if (!crc_ok(&x, hdr, 512)) {
		why_set(&x, "ddf1: primary header CRC wrong");
		return -EBADMSG;
	}
	uint16_t max_pd = g16(&x, hdr + 0x80), rec_len = g16(&x, hdr + 0x86), mpe = g16(&x, hdr + 0x88);
	if (mpe == 0xFFFF)
		mpe = max_pd;
	_cleanup_free_ uint8_t *pd = NULL, *dd = NULL, *vd = NULL, *cr = NULL;
	uint32_t pd_len = g32(&x, hdr + 0xCC), vd_len = g32(&x, hdr + 0xD4), cr_len = g32(&x, hdr + 0xDC),
		 dd_len = g32(&x, hdr + 0xE4);
	if ((r = read_section(&x, plba + g32(&x, hdr + 0xC8), pd_len, &pd, "physical drives")) < 0 ||
	    (r = read_section(&x, plba + g32(&x, hdr + 0xD0), vd_len, &vd, "virtual drives")) < 0 ||
	    (r = read_section(&x, plba + g32(&x, hdr + 0xD8), cr_len, &cr, "configuration")) < 0 ||
	    (r = read_section(&x, plba + g32(&x, hdr + 0xE0), dd_len, &dd, "disk data")) < 0)
		return r;
	if (g32(&x, pd) != DDF_PD_SIG || g32(&x, vd) != DDF_VD_SIG || g32(&x, dd) != DDF_DD_SIG) {
		why_set(&x, "ddf1: a section's signature is wrong");
		return -EBADMSG;
	}
	if (!crc_ok(&x, pd, (size_t)pd_len * 512) || !crc_ok(&x, vd, (size_t)vd_len * 512) ||
	    !crc_ok(&x, dd, (size_t)dd_len * 512)) {
		why_set(&x, "ddf1: a section's CRC is wrong");
		return -EBADMSG;
	}
	uint32_t myref = g32(&x, dd + 0x20);
	unsigned npd = g16(&x, pd + 8), nvd = g16(&x, vd + 8);
	if (0x40 + (size_t)npd * 64 > (size_t)pd_len * 512 || 0x40 + (size_t)nvd * 64 > (size_t)vd_len * 512) {
		why_set(&x, "ddf1: %u physical / %u virtual drives do not fit in their sections", npd, nvd);
		return -EBADMSG;
	}
	const uint8_t *mypd = NULL;
	for (unsigned i = 0; i < npd; i++)
		if (g32(&x, pd + 0x40 + i * 64 + 0x18) == myref)
			mypd = pd + 0x40 + i * 64;
	if (!mypd) {
		why_set(&x, "ddf1: this disk (reference 0x%08x) is not among the physical drives", myref);
		return -EBADMSG;
	}
	enum pm_raid_status st = pd_status(g16(&x, mypd + 0x1E));
	uint64_t pdsize = g64(&x, mypd + 0x20);

	size_t cnt = 0;
	if (max < 1)
		return -ENOBUFS;
	struct pm_raid_dev *g = &out[cnt++];
	memset(g, 0, sizeof(*g));
	g->fmt = &pm_raid_ddf1;
	g->listed = true;
	strcpy(g->set, ".ddf1_disks");
	strcpy(g->group, ".ddf1_disks");
	g->type = PM_RT_GROUP;
	g->status = st;
	g->sectors = pdsize && pdsize <= n ? pdsize : n;
	g->meta_offset = plba * 512;
	g->meta_len = (n - plba) * 512;

	if (!rec_len || (size_t)rec_len * 512 < 512 + (size_t)mpe * 12 || !mpe) {
		why_set(&x, "ddf1: configuration records of %u sectors cannot hold %u members", rec_len, mpe);
		return -EBADMSG;
	}
	unsigned nrec = cr_len / rec_len;
	for (unsigned i = 0; i < nrec; i++) {
		const uint8_t *c = cr + (size_t)i * rec_len * 512;
		if (g32(&x, c) != DDF_CR_SIG)
			continue; /* spare, vendor or unused records */
		if (!crc_ok(&x, c, (size_t)rec_len * 512)) {
			why_set(&x, "ddf1: configuration record %u CRC wrong", i);
			return -EBADMSG;
		}
		unsigned pec = g16(&x, c + 0x40);
		if (!pec || pec > mpe) {
			why_set(&x, "ddf1: configuration record %u: %u members (at most %u)", i, pec, mpe);
			return -EBADMSG;
		}
		unsigned pos = pec;
		for (unsigned k = 0; k < pec; k++)
			if (g32(&x, c + 512 + 4 * k) == myref)
				pos = k;
		if (pos == pec)
			continue;
		uint64_t start = g64(&x, c + 512 + 4 * (size_t)mpe + 8 * pos);
		uint64_t secs = g64(&x, c + 0x48);
		unsigned shift = c[0x42], level = c[0x43], rlq = c[0x44], sec_cnt = c[0x45], sec_num = c[0x46],
			 sec_level = c[0x47];
		/* a mirror or a concatenation has no stripe: mdadm writes 0xFF there for RAID1 */
		bool no_stripe = false;
		if (shift > 24 && (level == 0x01 || level == 0x0F || level == 0x1F))
			shift = 0, no_stripe = true;
		if (shift > 24) {
			why_set(&x, "ddf1: configuration record %u: stripe size 2^%u sectors", i, shift);
			return -EBADMSG;
		}
		if (start >= n || secs > n - start) {
			why_set(&x, "ddf1: member extent %llu+%llu is not on the disk", (unsigned long long)start,
				(unsigned long long)secs);
			return -EBADMSG;
		}
		const uint8_t *v = NULL;
		for (unsigned k = 0; k < nvd; k++)
			if (!memcmp(vd + 0x40 + k * 64, c + 8, 24))
				v = vd + 0x40 + k * 64;
		if (cnt >= max)
			return -ENOBUFS;
		struct pm_raid_dev *rd = &out[cnt];
		memset(rd, 0, sizeof(*rd));
		rd->fmt = &pm_raid_ddf1;
		if (v) {
			vd_name(v, rd->set, sizeof(rd->set));
		} else {
			uint8_t fake[64] = { 0 };
			memcpy(fake, c + 8, 24);
			vd_name(fake, rd->set, sizeof(rd->set));
		}
		strcpy(rd->group, ".ddf1_disks");
		rd->status = st;
		rd->offset = start;
		rd->sectors = secs;
		/* a mirror's or span's stripe size is shown as dmraid shows it (-s: "stride : 64"); mdadm's
		 * 0xFF as 0 */
		rd->stride = no_stripe ? 0 : 1u << shift;
		rd->index = pos;
		rd->members = pec;
		rd->set_sectors = g64(&x, c + 0x50);
		rd->meta_offset = g->meta_offset;
		rd->meta_len = g->meta_len;
		switch (level) {
		case 0x00: rd->type = PM_RT_RAID0; rd->sectors -= rd->sectors % rd->stride; break;
		case 0x01: rd->type = PM_RT_RAID1; break;
		case 0x04: rd->type = PM_RT_RAID4; break;
		case 0x05: rd->type = rlq == 2 ? PM_RT_RAID5_LA : rlq == 3 ? PM_RT_RAID5_LS : PM_RT_RAID5_RS; break;
		case 0x0F: case 0x1F: rd->type = PM_RT_LINEAR; break;
		default:
			why_set(&x, "ddf1: RAID level 0x%02x not supported", level);
			continue;
		}
		if (sec_cnt > 1) {
			/* secondary level (RAID10/50 as mdadm writes them): each configuration record is one
			 * subset, stacked under a striped (0 or mdadm's 3 "spanned") or concatenated (2) set */
			if (sec_num >= sec_cnt || (sec_level != 0 && sec_level != 2 && sec_level != 3)) {
				why_set(&x, "ddf1: secondary level %u, element %u of %u not supported", sec_level,
					sec_num, sec_cnt);
				continue;
			}
			if (snprintf(rd->subset, sizeof(rd->subset), "%s-%u", rd->set, sec_num) >= (int)sizeof(rd->subset))
				continue;
			rd->super_type = sec_level == 2 ? PM_RT_LINEAR : PM_RT_RAID0;
			rd->super_stride = sec_level == 2 ? 0 : 1u << shift;
			rd->subset_index = sec_num;
			rd->subsets = sec_cnt;
		}
		cnt++;
	}
	return (int)cnt;
}

const struct pm_raid_format pm_raid_ddf1 = {
	.name = "ddf1",
	.descr = "SNIA DDF1",
	.caps = "0,1,4,5,linear",
	.read = ddf1_read,
};
