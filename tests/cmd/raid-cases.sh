# The BIOS RAID sets mkraid lays a virtual disk out on, for tests/cmd/dmraid-formats.t (host) and
# tests/vm/dmraid-formats.t (Debian's dmraid as the judge): "FORMAT LEVEL DISKS" each. mkraid writes
# each member as a whole disk of the size it is given (the VM: its 160 MiB disks, metadata at their
# end as isw and ddf1 keep it); isw members carry the serial numbers mkraid -s is given (the VM: the
# disks' own, as dmraid -b reports them), since dmraid finds IMSM members by serial. raid01 is a
# stripe of two-disk mirrors (what IMSM and mdadm's DDF call RAID10; dmraid shows raid01). "isw
# spare 1": a spare disk's own record, a spare set and nothing to map.
# shellcheck disable=SC2034
RAID_CASES=(
	"nvidia raid0 2" "nvidia raid1 2" "nvidia span 2" "nvidia raid10 4"
	"pdc raid0 2" "pdc raid1 2" "pdc span 2" "pdc raid10 4"
	"sil raid0 2" "sil raid1 2" "sil raid10 4"
	"via raid0 2" "via raid1 2" "via span 2"
	"jmicron raid0 2" "jmicron raid1 2" "jmicron span 2"
	"lsi raid0 2" "lsi raid1 2" "lsi raid10 4"
	"asr raid0 2" "asr raid1 2" "asr raid10 4"
	"hpt37x raid0 2" "hpt37x raid1 2" "hpt37x span 2" "hpt37x raid10 4" "hpt37x raid01 4"
	"hpt45x raid0 2" "hpt45x raid1 2" "hpt45x span 2" "hpt45x raid10 4"
	"isw raid0 2" "isw raid0 3" "isw raid1 2" "isw raid01 4" "isw raid5 3" "isw spare 1"
	"ddf1 raid0 3" "ddf1 raid1 2" "ddf1 raid5 3" "ddf1 span 2" "ddf1 raid01 4"
)
