/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The registry of BIOS RAID formats, in dmraid -l order, and the names dmraid prints. */
#include "raid.h"

#include <string.h>

/* weak while readers are being written: a format not linked in is left out of the registry */
#pragma weak pm_raid_asr
#pragma weak pm_raid_ddf1
#pragma weak pm_raid_hpt37x
#pragma weak pm_raid_hpt45x
#pragma weak pm_raid_isw
#pragma weak pm_raid_jmicron
#pragma weak pm_raid_lsi
#pragma weak pm_raid_nvidia
#pragma weak pm_raid_pdc
#pragma weak pm_raid_sil
#pragma weak pm_raid_via

static const struct pm_raid_format *const all_formats[] = {
	&pm_raid_asr, &pm_raid_ddf1, &pm_raid_hpt37x, &pm_raid_hpt45x, &pm_raid_isw, &pm_raid_jmicron,
	&pm_raid_lsi, &pm_raid_nvidia, &pm_raid_pdc, &pm_raid_sil, &pm_raid_via,
};

const struct pm_raid_format *const *const pm_raid_all = all_formats;
const size_t pm_raid_nall = sizeof(all_formats) / sizeof(all_formats[0]);

const struct pm_raid_format *pm_raid_format_by_name(const char *name)
{
	for (size_t i = 0; i < pm_raid_nall; i++)
		if (pm_raid_all[i] && !strcmp(pm_raid_all[i]->name, name))
			return pm_raid_all[i];
	return NULL;
}

const char *pm_raid_type_name(enum pm_raid_type t)
{
	static const char *const names[] = {
		[PM_RT_UNDEF] = "undef", [PM_RT_GROUP] = "GROUP", [PM_RT_PARTITION] = "partition",
		[PM_RT_SPARE] = "spare", [PM_RT_LINEAR] = "linear", [PM_RT_RAID0] = "stripe",
		[PM_RT_RAID1] = "mirror", [PM_RT_RAID4] = "raid4", [PM_RT_RAID5_LS] = "raid5_ls",
		[PM_RT_RAID5_RS] = "raid5_rs", [PM_RT_RAID5_LA] = "raid5_la", [PM_RT_RAID5_RA] = "raid5_ra",
		[PM_RT_RAID6] = "raid6",
	};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "undef";
}

const char *pm_raid_status_name(enum pm_raid_status s)
{
	static const char *const names[] = {
		[PM_RS_UNDEF] = "unknown", [PM_RS_SETUP] = "setup", [PM_RS_BROKEN] = "broken",
		[PM_RS_INCONSISTENT] = "inconsistent", [PM_RS_NOSYNC] = "nosync", [PM_RS_OK] = "ok",
	};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

void pm_raid_mk_alpha(char *s)
{
	for (; *s; s++)
		if (*s >= '0' && *s <= '9')
			*s = (char)('a' + (*s - '0'));
}

void pm_raid_mk_alphanum(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			*s = '_';
}
