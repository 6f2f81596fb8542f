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
