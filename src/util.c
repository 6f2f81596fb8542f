/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "util.h"

#include <errno.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

size_t pm_strlcpy(char *dst, const char *src, size_t n)
{
	size_t l = strlen(src);

	if (n) {
		size_t c = l < n - 1 ? l : n - 1;
		memcpy(dst, src, c);
		dst[c] = 0;
	}
	return l;
}

int pm_read_line(const char *path, char *buf, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = 0;
	return 0;
}

int pm_read_u64(const char *path, uint64_t *v)
{
	char buf[32], *end;
	int r = pm_read_line(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno || end == buf ? -EINVAL : 0;
}

static void queue_path(dev_t dev, const char *attr, char *path, size_t len)
{
	snprintf(path, len, "/sys/dev/block/%u:%u/queue/%s", major(dev), minor(dev), attr);
}

int pm_queue_get(dev_t dev, const char *attr, uint64_t *v)
{
	char path[128];

	queue_path(dev, attr, path, sizeof(path));
	return pm_read_u64(path, v);
}

int pm_queue_set(dev_t dev, const char *attr, uint64_t v)
{
	char path[128], val[24];
	int n = snprintf(val, sizeof(val), "%llu", (unsigned long long)v);

	queue_path(dev, attr, path, sizeof(path));
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write(fd, val, (size_t)n) < 0 ? -errno : 0;
}

int pm_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int pm_parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void pm_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void pm_monotonic_after(struct timespec *ts, uint64_t us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(us / 1000000);
	ts->tv_nsec += (long)(us % 1000000) * 1000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

size_t pm_utf16_to_utf8(const uint8_t *in, size_t in_bytes, bool be, char *out, size_t out_len)
{
	size_t o = 0;

	if (!out_len)
		return 0;
	for (size_t i = 0; i + 1 < in_bytes; i += 2) {
		uint32_t c = be ? (uint32_t)(in[i] << 8 | in[i + 1]) : (uint32_t)(in[i] | in[i + 1] << 8);
		char tmp[4];
		size_t n;

		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 3 < in_bytes) {
			uint32_t lo = be ? (uint32_t)(in[i + 2] << 8 | in[i + 3]) : (uint32_t)(in[i + 2] | in[i + 3] << 8);
			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 2;
			}
		}
		if (c >= 0xd800 && c < 0xe000)
			c = 0xfffd; /* a surrogate without its other half */
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

uint64_t pm_dev_encode(dev_t d)
{
	uint64_t maj = major(d), min = minor(d);
	return (min & 0xff) | (maj << 8) | ((min & ~0xffull) << 12);
}

dev_t pm_dev_decode(uint64_t d)
{
	return makedev((unsigned)((d & 0xfff00) >> 8), (unsigned)((d & 0xff) | ((d >> 12) & 0xfff00)));
}

int pm_grow(void *pv, size_t n, size_t *cap, size_t elem)
{
	void *old, *nv;
	size_t nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	memcpy(&old, pv, sizeof(old)); /* the caller's T *, whatever T */
	nv = reallocarray(old, nc, elem);
	if (!nv)
		return -ENOMEM;
	memcpy(pv, &nv, sizeof(nv));
	*cap = nc;
	return 0;
}
