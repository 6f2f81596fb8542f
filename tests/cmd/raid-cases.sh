# The BIOS RAID sets mkraid lays a virtual disk out on, for tests/cmd/dmraid-formats.t (host) and
# tests/vm/dmraid-formats.t (Debian's dmraid as the judge): "FORMAT LEVEL DISKS" each.
# Not here: hpt37x raid01, whose bytes mkraid lays out otherwise than dmraid and partmap read them
# (which of the two is right is not known: no real HPT37x metadata at hand).
# shellcheck disable=SC2034
RAID_CASES=(
	"nvidia raid0 2" "nvidia raid1 2" "nvidia span 2" "nvidia raid10 4"
	"pdc raid0 2" "pdc raid1 2" "pdc span 2" "pdc raid10 4"
	"sil raid0 2" "sil raid1 2" "sil raid10 4"
	"via raid0 2" "via raid1 2" "via span 2"
	"jmicron raid0 2" "jmicron raid1 2" "jmicron span 2"
	"lsi raid0 2" "lsi raid1 2" "lsi raid10 4"
	"asr raid0 2" "asr raid1 2" "asr raid10 4"
	"hpt37x raid0 2" "hpt37x raid1 2" "hpt37x span 2"
	"hpt45x raid0 2" "hpt45x raid1 2" "hpt45x span 2" "hpt45x raid10 4"
)
