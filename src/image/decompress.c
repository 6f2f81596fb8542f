/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Decompression of compressed clusters and grains (zlib, libzstd), text conversion for file names
 * stored as UTF-16. */
#include "format.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* Inflate into out until it is full; the stream must then end (more output would not fit a cluster). */
static int inflate_exact(int window_bits, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len,
			 bool must_fill)
{
	z_stream s = { 0 };
	uint8_t extra;
	int r;

	if (in_len > UINT32_MAX || *out_len > UINT32_MAX)
		return -EIO;
	if (inflateInit2(&s, window_bits) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)in_len;
	s.next_out = out;
	s.avail_out = (uInt)*out_len;
	r = inflate(&s, Z_FINISH);
	size_t room_left = s.avail_out;
	if ((r == Z_BUF_ERROR || r == Z_OK) && room_left == 0) {
		/* output full before the end of the stream: only the end marker may remain */
		s.next_out = &extra;
		s.avail_out = 1;
		r = inflate(&s, Z_FINISH);
		if (s.avail_out == 0)
			r = Z_DATA_ERROR; /* it inflates to more than fits */
	}
	inflateEnd(&s);
	*out_len -= room_left;
	if (r != Z_STREAM_END || (must_fill && room_left))
		return -EIO;
	return 0;
}

int pm_inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	size_t n = out_len;
	int r = inflate_exact(-15, in, in_len, out, &n, true);
	return r < 0 ? r : n == out_len ? 0 : -EIO;
}

int pm_inflate_zlib(const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	return inflate_exact(15, in, in_len, out, out_len, false);
}

int pm_zstd_decompress(struct pm_image *img, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	ZSTD_DCtx *dc = NULL;
	ZSTD_inBuffer ib = { in, in_len, 0 };
	ZSTD_outBuffer ob = { out, out_len, 0 };
	int r = 0;

	pthread_mutex_lock(&img->dec.lock);
	if (img->nzstd)
		dc = img->zstd_pool[--img->nzstd];
	pthread_mutex_unlock(&img->dec.lock);
	if (dc)
		ZSTD_DCtx_reset(dc, ZSTD_reset_session_only);
	else if (!(dc = ZSTD_createDCtx()))
		return -ENOMEM;
	/* the compressed data is followed by padding up to a sector: stop when the frame ends */
	for (;;) {
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t z = ZSTD_decompressStream(dc, &ob, &ib);
		if (ZSTD_isError(z)) {
			r = -EIO;
			break;
		}
		if (z == 0)
			break; /* the frame is complete */
		if (ob.pos == ob.size) {
			/* full: anything more the frame holds would not fit */
			uint8_t extra;
			ZSTD_outBuffer eb = { &extra, 1, 0 };
			z = ZSTD_decompressStream(dc, &eb, &ib);
			if (ZSTD_isError(z) || eb.pos || z != 0)
				r = -EIO;
			break;
		}
		if (ib.pos == before_in && ob.pos == before_out) {
			r = -EIO; /* no progress: the input ended inside the frame */
			break;
		}
	}
	pthread_mutex_lock(&img->dec.lock);
	if (img->nzstd < PM_IMG_DATA_SLOTS) {
		img->zstd_pool[img->nzstd++] = dc;
		dc = NULL;
	}
	pthread_mutex_unlock(&img->dec.lock);
	ZSTD_freeDCtx(dc);
	if (r == 0 && ob.pos != out_len)
		r = -EIO;
	return r;
}

void pm_zstd_pool_free(struct pm_image *img)
{
	while (img->nzstd)
		ZSTD_freeDCtx(img->zstd_pool[--img->nzstd]);
}

size_t pm_utf16_to_utf8(const uint8_t *in, size_t in_bytes, bool be, char *out, size_t out_len)
{
	size_t o = 0;

	if (!out_len)
		return 0;
	for (size_t i = 0; i + 1 < in_bytes; i += 2) {
		uint32_t c = be ? (uint32_t)(in[i] << 8 | in[i + 1]) : (uint32_t)(in[i] | in[i + 1] << 8);
		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 3 < in_bytes) {
			uint32_t lo = be ? (uint32_t)(in[i + 2] << 8 | in[i + 3]) : (uint32_t)(in[i + 2] | in[i + 3] << 8);
			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 2;
			}
		}
		char tmp[4];
		size_t n;
		if (c < 0x80) {
			tmp[0] = (char)c;
			n = 1;
		} else if (c < 0x800) {
			tmp[0] = (char)(0xc0 | c >> 6);
			tmp[1] = (char)(0x80 | (c & 0x3f));
			n = 2;
		} else if (c < 0x10000) {
			tmp[0] = (char)(0xe0 | c >> 12);
			tmp[1] = (char)(0x80 | ((c >> 6) & 0x3f));
			tmp[2] = (char)(0x80 | (c & 0x3f));
			n = 3;
		} else {
			tmp[0] = (char)(0xf0 | c >> 18);
			tmp[1] = (char)(0x80 | ((c >> 12) & 0x3f));
			tmp[2] = (char)(0x80 | ((c >> 6) & 0x3f));
			tmp[3] = (char)(0x80 | (c & 0x3f));
			n = 4;
		}
		if (o + n >= out_len)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = 0;
	return o;
}
