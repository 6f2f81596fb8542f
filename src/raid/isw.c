/* SPDX-License-Identifier: GPL-2.0-or-later */
/* isw: Intel Software RAID / Matrix / RST (IMSM), as dmraid reads it and mdadm writes it. The MPB
 * (metadata block) sits at LBA N-2, its extra sectors just before it; a 32-bit sum checks it. One
 * group record per disk (isw_<family>) and one record per volume the disk is in. Facts:
 * ../shared/reference/dmraid.md §1.1. */
#include "raid.h"

#include "../util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISW_SIG "Intel Raid ISM Cfg Sig. "
#define ISW_SIG_LEN 24
#define ISW_HDR 0xD8u          /* struct isw, then the disk table */
#define ISW_DISK 48u           /* one disk table entry */
#define ISW_DEV 0x70u          /* struct isw_dev up to its first map */
#define ISW_MAP 52u            /* a map with one member; +4 a member more */
#define ISW_MPB_MAX (1u << 20) /* larger than any MPB mdadm writes (it caps at 128 KiB) */

enum { ISW_SPARE = 0x01, ISW_CONFIGURED = 0x02, ISW_FAILED = 0x04 };

static void why_set(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* The anchor sector: at N-2, or where the HPA pointer at N-1 says, or dmraid's fixed N-2115. */
static int find_anchor(struct pm_disk *d, uint8_t *sec, uint64_t *lba)
{
	uint64_t n = pm_disk_sectors(d);
	uint64_t cand[3];
	size_t nc = 0;
	uint8_t hpa[512];

	if (n < 3)
		return 0;
	cand[nc++] = n - 2;
	if (pm_disk_read512(d, n - 1, hpa) == 0 && !memcmp(hpa, "$GAFR\x10", 6)) {
		uint32_t off = pm_raid_le32(hpa + 6);
		if ((uint64_t)off + 2 < n)
			cand[nc++] = n - (off + 2ull);
	}
	if (n > 2115)
		cand[nc++] = n - 2115;
	for (size_t i = 0; i < nc; i++) {
		int r = pm_disk_read512(d, cand[i], sec);
		if (r < 0)
			return r;
		if (!memcmp(sec, ISW_SIG, ISW_SIG_LEN)) {
			*lba = cand[i];
			return 1;
		}
	}
	return 0;
}

/* The disk's serial as dmraid compares it: whitespace removed, ':' to ';', the last 16 characters. */
static void norm_serial(const char *in, char *out)
{
	char t[256];
	size_t n = 0;
	for (; *in && n < sizeof(t) - 1; in++) {
		if (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r' || *in == '\v' || *in == '\f')
			continue;
		t[n++] = *in == ':' ? ';' : *in;
	}
	t[n] = 0;
	strcpy(out, n > 16 ? t + n - 16 : t);
}

static enum pm_raid_status disk_status(uint32_t st)
{
	if (st & ISW_FAILED)
		return PM_RS_BROKEN;
	return PM_RS_OK;
}

/* One volume (isw_dev) at mpb[off..end): its size in bytes, or 0 when it does not fit. */
static size_t dev_size(const uint8_t *mpb, size_t off, size_t end)
{
	if (off > end || end - off < ISW_DEV + ISW_MAP)
		return 0;
	const uint8_t *dev = mpb + off;
	unsigned members = dev[ISW_DEV + 0x10];
	if (!members)
		return 0;
	size_t map = ISW_MAP + 4u * (members - 1);
	size_t sz = ISW_DEV + map;
	if (dev[0x50 + 8]) { /* migr_state: a second map follows */
		if (end - off < sz + ISW_MAP)
			return 0;
		unsigned m2 = dev[sz + 0x10];
		if (!m2)
			return 0;
		sz += ISW_MAP + 4u * (m2 - 1);
	}
	return sz <= end - off ? sz : 0;
}

/* position >= 0: this disk is that entry of the disk table (no serial to match); -1: match by serial,
 * or, without one, give only the group record and flag it by_position. */
static int isw_read_pos(struct pm_disk *d, const char *serial, int position, struct pm_raid_dev *out,
			 size_t max, char *why, size_t whylen)
{
	uint8_t sec[512];
	uint64_t anchor;
	int r = find_anchor(d, sec, &anchor);
	if (r <= 0)
		return r;
	uint32_t mpb_size = pm_raid_le32(sec + 0x24);
	if (mpb_size < ISW_HDR || mpb_size > ISW_MPB_MAX || mpb_size % 4) {
		why_set(why, whylen, "isw: metadata size %u out of range", mpb_size);
		return -EBADMSG;
	}
	size_t k = (mpb_size + 511) / 512;
	if (k - 1 > anchor) {
		why_set(why, whylen, "isw: metadata (%u bytes) larger than the disk before it", mpb_size);
		return -EBADMSG;
	}
	_cleanup_free_ uint8_t *mpb = malloc(k * 512);
	if (!mpb)
		return -ENOMEM;
	memcpy(mpb, sec, 512);
	if (k > 1 && (r = pm_disk_read(d, (anchor - (k - 1)) * 512, mpb + 512, (k - 1) * 512)) < 0)
		return r;
	/* the checksum: every 32-bit word but the checksum's own, summed with wrap */
	uint32_t sum = 0, want = pm_raid_le32(mpb + 0x20);
	for (size_t i = 0; i < mpb_size; i += 4)
		sum += pm_raid_le32(mpb + i);
	sum -= want;
	if (sum != want) {
		why_set(why, whylen, "isw: checksum 0x%08x, the metadata says 0x%08x", sum, want);
		return -EBADMSG;
	}
	uint32_t family = pm_raid_le32(mpb + 0x28);
	unsigned ndisks = mpb[0x38], nvols = mpb[0x39];
	if (!ndisks || ISW_HDR + (size_t)ndisks * ISW_DISK > mpb_size) {
		why_set(why, whylen, "isw: %u disks do not fit in %u bytes of metadata", ndisks, mpb_size);
		return -EBADMSG;
	}
	/* which disk-table entry is this disk */
	int me = -1;
	bool by_pos = false;
	char want_serial[256] = "";
	if (serial && *serial)
		norm_serial(serial, want_serial);
	if (position >= 0) {
		if ((unsigned)position >= ndisks) {
			why_set(why, whylen, "isw: disk %d of a set of %u", position + 1, ndisks);
			return -EBADMSG;
		}
		me = position;
	} else if (*want_serial) {
		for (unsigned i = 0; i < ndisks; i++) {
			char s[17];
			memcpy(s, mpb + ISW_HDR + i * ISW_DISK, 16);
			s[16] = 0;
			if (!strcmp(s, want_serial))
				me = (int)i;
		}
		if (me < 0) {
			why_set(why, whylen, "isw: Could not find disk with serial %s in the metadata", want_serial);
			return -EBADMSG;
		}
	} else {
		by_pos = true;
	}

	char fam[16];
	snprintf(fam, sizeof(fam), "%u", family);
	pm_raid_mk_alpha(fam);
	char group[PM_RAID_NAME_MAX];
	snprintf(group, sizeof(group), "isw_%s", fam);

	size_t n = 0;
	if (n >= max)
		return -ENOBUFS;
	struct pm_raid_dev *g = &out[n++];
	memset(g, 0, sizeof(*g));
	g->fmt = &pm_raid_isw;
	g->listed = true;
	pm_strlcpy(g->set, group, sizeof(g->set));
	pm_strlcpy(g->group, group, sizeof(g->group));
	g->type = PM_RT_GROUP;
	g->status = me >= 0 ? disk_status(pm_raid_le32(mpb + ISW_HDR + (size_t)me * ISW_DISK + 0x18)) : PM_RS_OK;
	g->sectors = anchor;
	g->meta_offset = (anchor - (k - 1)) * 512;
	g->meta_len = k * 512;
	g->by_position = by_pos;
	g->members = ndisks;
	g->index = me >= 0 ? (unsigned)me : 0;
	if (by_pos) {
		why_set(why, whylen, "isw: no serial number: the disk's place in the set is the order disks are given in");
		return (int)n;
	}
	/* a spare disk (dmraid: when the first disk-table entry is marked spare, as on the one-disk record
	 * mdadm and the Intel ROM write on a spare): -r lists it as a spare, and it is the one member of
	 * a spare set in the group, named isw_<family>_<its path> */
	if (pm_raid_le32(mpb + ISW_HDR + 0x18) & ISW_SPARE) {
		if (pm_raid_le32(mpb + ISW_HDR + (size_t)me * ISW_DISK + 0x18) & ISW_SPARE)
			g->type = PM_RT_SPARE;
		if (n >= max)
			return -ENOBUFS;
		struct pm_raid_dev *sp = &out[n++];
		*sp = *g;
		sp->listed = false;
		sp->type = PM_RT_SPARE;
		sp->name_by_path = true;
		sp->members = 1;
		sp->index = 0;
		snprintf(sp->set, sizeof(sp->set), "%.*s_", PM_RAID_NAME_MAX - 2, group);
		return (int)n;
	}
	size_t off = ISW_HDR + (size_t)ndisks * ISW_DISK;
	for (unsigned v = 0; v < nvols; v++) {
		size_t sz = dev_size(mpb, off, mpb_size);
		if (!sz) {
			why_set(why, whylen, "isw: volume %u does not fit in the metadata", v + 1);
			return -EBADMSG;
		}
		const uint8_t *dev = mpb + off, *map = dev + ISW_DEV;
		off += sz;
		unsigned members = map[0x10], pos = members;
		for (unsigned i = 0; i < members; i++)
			if ((pm_raid_le32(map + 0x30 + 4 * i) & 0xFFFFFF) == (unsigned)me)
				pos = i;
		if (pos == members)
			continue; /* not on this disk */
		for (unsigned i = 0; i < members; i++)
			if ((pm_raid_le32(map + 0x30 + 4 * i) & 0xFFFFFF) >= ndisks) {
				why_set(why, whylen, "isw: volume %u names disk %u of %u", v + 1,
					pm_raid_le32(map + 0x30 + 4 * i) & 0xFFFFFF, ndisks);
				return -EBADMSG;
			}
		uint32_t lba0 = pm_raid_le32(map), bpm = pm_raid_le32(map + 4);
		uint16_t strip = pm_raid_le16(map + 0x0C);
		unsigned level = map[0x0F], state = map[0x0E];
		if ((uint64_t)lba0 + bpm > anchor - (k - 1)) {
			why_set(why, whylen, "isw: volume %u (%u+%u sectors) runs past its metadata at %llu", v + 1,
				lba0, bpm, (unsigned long long)(anchor - (k - 1)));
			return -EBADMSG;
		}
		if (n >= max)
			return -ENOBUFS;
		struct pm_raid_dev *rd = &out[n++];
		memset(rd, 0, sizeof(*rd));
		rd->fmt = &pm_raid_isw;
		char vol[17];
		memcpy(vol, dev, 16);
		vol[16] = 0;
		snprintf(rd->set, sizeof(rd->set), "isw_%s_%s", fam, vol);
		pm_raid_mk_alphanum(rd->set);
		pm_strlcpy(rd->group, group, sizeof(rd->group));
		rd->offset = lba0;
		rd->sectors = bpm;
		rd->stride = strip;
		rd->index = pos;
		rd->members = members;
		rd->set_sectors = pm_raid_le32(dev + 0x10) | (uint64_t)pm_raid_le32(dev + 0x14) << 32;
		rd->meta_offset = g->meta_offset;
		rd->meta_len = g->meta_len;
		rd->status = disk_status(pm_raid_le32(mpb + ISW_HDR + (size_t)me * ISW_DISK + 0x18));
		if (rd->status == PM_RS_OK && state == 1)
			rd->status = PM_RS_NOSYNC;
		if (level == 0) {
			rd->type = PM_RT_RAID0;
		} else if ((level == 1 && members >= 4) || level == 2 || level == 10) {
			/* RAID10: mirror pairs (position/2) striped */
			if (members % 2 || members < 4) {
				why_set(why, whylen, "isw: RAID10 volume %u with %u members", v + 1, members);
				return -EBADMSG;
			}
			if (snprintf(rd->subset, sizeof(rd->subset), "%s-%u", rd->set, pos / 2) >= (int)sizeof(rd->subset))
				return -ENAMETOOLONG;
			rd->type = PM_RT_RAID1;
			rd->super_type = PM_RT_RAID0;
			rd->super_stride = strip;
			rd->stride = strip; /* dmraid shows the volume's strip for its mirrors too */
			rd->index = pos % 2;
			rd->members = 2;
			rd->subset_index = pos / 2;
			rd->subsets = members / 2;
		} else if (level == 1) {
			rd->type = PM_RT_RAID1; /* stride: the strip, as dmraid shows it */
		} else if (level == 5) {
			rd->type = PM_RT_RAID5_LA;
		} else {
			why_set(why, whylen, "isw: RAID type %u not supported", level);
			n--;
			continue;
		}
		if ((rd->type == PM_RT_RAID0 || rd->type == PM_RT_RAID5_LA || rd->super_type == PM_RT_RAID0) && !strip) {
			why_set(why, whylen, "isw: volume %u has a strip of 0 sectors", v + 1);
			return -EBADMSG;
		}
	}
	if (pm_raid_le32(mpb + 0x48))
		why_set(why, whylen, "isw: BBM entries detected!");
	return (int)n;
}

static int isw_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		    size_t whylen)
{
	return isw_read_pos(d, serial, -1, out, max, why, whylen);
}

const struct pm_raid_format pm_raid_isw = {
	.name = "isw",
	.descr = "Intel Software RAID",
	.caps = "0,1,5,01",
	.read = isw_read,
	.read_pos = isw_read_pos,
};
