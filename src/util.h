/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by the library: explicit endian loads, cleanup attributes, overflow checks. */
#ifndef PARTMAP_UTIL_H
#define PARTMAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline uint16_t get_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t get_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t get_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)get_le32(b) | (uint64_t)get_le32(b + 4) << 32;
}
static inline uint16_t get_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}
static inline uint32_t get_be32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}
static inline uint64_t get_be64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)get_be32(b) << 32 | (uint64_t)get_be32(b + 4);
}
static inline void put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(void *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline void put_be16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void put_be32(void *p, uint32_t v)
{
	uint8_t *b = p;
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void put_be64(void *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32((uint8_t *)p + 4, (uint32_t)v);
}

/* a * b, saturating at UINT64_MAX (a saturated value is always "past the end of the device") */
static inline uint64_t mul_sat(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
static inline uint64_t add_sat(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* copy at most n-1 bytes and always terminate */
size_t pm_strlcpy(char *dst, const char *src, size_t n);
/* the first line of a small file (sysfs), without its newline; 0 or -errno */
int pm_read_line(const char *path, char *buf, size_t len);
/* a decimal number from such a file */
int pm_read_u64(const char *path, uint64_t *v);
/* A block device's queue attribute in sysfs (/sys/dev/block/MAJ:MIN/queue/ATTR, a number): read, or
 * written; 0 or -errno. */
int pm_queue_get(dev_t dev, const char *attr, uint64_t *v);
int pm_queue_set(dev_t dev, const char *attr, uint64_t v);
/* pwrite of all len bytes at off (retried on EINTR and short writes): 0 or -errno (-EIO for 0). */
int pm_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* UTF-16 (little- or big-endian, up to a NUL unit) to NUL-terminated UTF-8, cut at a character
 * boundary to fit out_len; a surrogate without its other half becomes U+FFFD. Bytes written. */
size_t pm_utf16_to_utf8(const uint8_t *in, size_t in_bytes, bool big_endian, char *out, size_t out_len);
/* Device numbers as the kernel passes them in 64 bits (huge_encode_dev: DM ioctls, loop status) */
uint64_t pm_dev_encode(dev_t d);
dev_t pm_dev_decode(uint64_t d);
/* Room for one more element in a growing array: *(T **)pv holds n elements of elem bytes in *cap
 * allocated; doubled (from 16) when full. 0, or -ENOMEM with the array left as it was. */
int pm_grow(void *pv, size_t n, size_t *cap, size_t elem);
/* sleep this many milliseconds (resumed after a signal) */
void pm_sleep_ms(unsigned ms);
/* CLOCK_MONOTONIC now plus us microseconds, for pthread_cond_timedwait on a CLOCK_MONOTONIC cond */
void pm_monotonic_after(struct timespec *ts, uint64_t us);
/* a whole decimal number, nothing else, at most max: 0, or -EINVAL */
int pm_parse_ulong(const char *s, unsigned long max, unsigned long *out);

#endif
