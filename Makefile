# partmap — plain Makefile. `make` builds build/partmap and build/kpartx; `make check` runs every test.
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

CC ?= cc
CLANG ?= clang
BUILD ?= build
CSTD := -std=c17
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
ifeq ($(CI),true)
WARN += -Werror
endif
ifdef WERROR
WARN += -Werror
endif
OPT ?= -O2 -g
# a section per function and object: the linker can then lay out the code and data that start-up and
# kpartx -l touch together (src/hot.ld, tools/hot-order.pl)
SECTIONS := -ffunction-sections -fdata-sections
CPPFLAGS += -D_GNU_SOURCE -DPARTMAP_VERSION=\"$(VERSION)\"
CFLAGS += $(CSTD) $(WARN) $(OPT)

LIB_SRC := $(wildcard src/*.c) $(wildcard src/table/*.c) $(wildcard src/map/*.c) $(wildcard src/image/*.c) \
	$(wildcard src/vdev/*.c) $(wildcard src/target/*.c) $(wildcard src/raid/*.c)
LIBS := -lfuse3 -lzstd -lz -lcrypto -lpthread -ldl -lrt
# build/partmap is linked statically: a run of `kpartx -l` then costs about what exec of a do-nothing
# static program costs, where the dynamic loader spent more time mapping and relocating libc, libfuse3,
# libzstd, zlib and libcrypto than -l spends on its work (bench/list.sh; README, Building).
# LINK=dynamic links against the shared libraries instead. The tests and fuzz targets stay dynamic.
LINK ?= static
# src/hot.ld (made by `make hot-order`) puts the code and data that start-up and kpartx -l touch
# first in their output sections: a few pages to fault in, not pages spread over 3.7 MiB of text
HOT_LD := src/hot.ld
ifeq ($(LINK),static)
PARTMAP_LDFLAGS := -static -Wl,-T,$(HOT_LD)
endif
CPPFLAGS += -I/usr/include/fuse3
CLI_SRC := $(wildcard src/cli/*.c)
HDRS := $(wildcard src/*.h src/cli/*.h src/map/*.h src/image/*.h src/table/*.h src/vdev/*.h src/target/*.h src/raid/*.h)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ASAN_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/asan/%)
UNIT_HELPERS := tests/unit/imgbuild.c tests/unit/imgfmt.c tests/unit/tgtenv.c tests/unit/raidsyn.c

FUZZ_TYPES := gpt sgi dos bsd sun atari mac ps3 solaris unixware
FUZZ_SRC := src/ptable.c src/disk.c src/crc32.c src/util.c $(wildcard src/table/*.c) $(wildcard src/image/*.c)
FUZZ_FORMATS := qcow2 vmdk vhd vhdx vdi
FUZZ_BIN := $(FUZZ_TYPES:%=$(BUILD)/fuzz/fuzz_%) $(FUZZ_FORMATS:%=$(BUILD)/fuzz/fuzz_img_%) $(BUILD)/fuzz/fuzz_dmtable $(BUILD)/fuzz/fuzz_raid

.PHONY: all static install demo check deps deb fresh-check unit asan fuzz clang-build bench clean vm hot-order

all: $(BUILD)/partmap $(BUILD)/kpartx

# plain make on a machine without the -dev packages: one line naming them, not a compiler error
$(BUILD)/.deps-build:
	@tests/install-deps.sh --check build
	@mkdir -p $(dir $@) && touch $@

$(BUILD)/obj/%.o: %.c $(HDRS) | $(BUILD)/.deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SECTIONS) -c -o $@ $<

$(BUILD)/partmap: $(LIB_OBJ) $(CLI_OBJ) $(HOT_LD)
	$(CC) $(CFLAGS) $(LDFLAGS) $(PARTMAP_LDFLAGS) -o $@ $(LIB_OBJ) $(CLI_OBJ) $(LIBS)

$(BUILD)/kpartx: $(BUILD)/partmap
	ln -sf partmap $@

# static whatever LINK says (the test VM's initramfs holds it)
static: $(BUILD)/static/partmap
$(BUILD)/static/partmap: $(LIB_OBJ) $(CLI_OBJ) $(HOT_LD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -static -Wl,-T,$(HOT_LD) -o $@ $(LIB_OBJ) $(CLI_OBJ) $(LIBS)

# Remake src/hot.ld from runs of the static binary (valgrind and perf: a developer's tool, run after
# changes to what start-up or -l run; a stale script costs page faults, never correctness: ld skips
# a pattern that matches nothing)
hot-order: $(LIB_OBJ) $(CLI_OBJ)
	tests/install-deps.sh build hot
	tools/hot-order.sh $(BUILD)/hot-order '$(CC) $(CFLAGS) $(LDFLAGS) -static' '$(LIBS)' $^ >$(HOT_LD).new
	mv $(HOT_LD).new $(HOT_LD)

# The drop-in names: links to partmap in DROPIN_DIR, a directory users put first on PATH (beside the
# tools of the same names, never over them); SBIN_LINKS also in sbin (make install: kpartx, as
# before; make deb: none, since Debian's kpartx, dmsetup and mount packages own those names).
DROPIN_DIR ?= $(PREFIX)/lib/partmap/bin
DROPIN := kpartx dmsetup losetup
SBIN_LINKS ?= kpartx
MANPAGES := doc/partmap.8 $(wildcard doc/partmap-*.8)

install: all
	install -D -m 0755 $(BUILD)/partmap $(DESTDIR)$(PREFIX)/sbin/partmap
	install -d $(DESTDIR)$(DROPIN_DIR) $(DESTDIR)$(PREFIX)/share/man/man8
	for n in $(DROPIN); do ln -sfn $(PREFIX)/sbin/partmap $(DESTDIR)$(DROPIN_DIR)/$$n; done
	install -m 0644 $(MANPAGES) $(DESTDIR)$(PREFIX)/share/man/man8/
	for n in $(SBIN_LINKS); do ln -sfn partmap $(DESTDIR)$(PREFIX)/sbin/$$n; \
		ln -sfn partmap-$$n.8 $(DESTDIR)$(PREFIX)/share/man/man8/$$n.8; done
	install -D -m 0644 completion/partmap $(DESTDIR)$(PREFIX)/share/bash-completion/completions/partmap

# a Debian package of the above (pkg/mkdeb.sh says how and why)
deb:
	@tests/install-deps.sh build deb
	@$(MAKE) --no-print-directory all
	pkg/mkdeb.sh $(BUILD) $(VERSION)

# ---- tests ----
# The unit tests link the library's objects (the binary's, and a sanitized set for the ASan build)
# from an archive, whole (targets register through weak references that would not pull members),
# instead of compiling every source again for each test.
ASAN_FLAGS := $(CSTD) $(WARN) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan-obj/%.o) $(UNIT_HELPERS:%.c=$(BUILD)/asan-obj/%.o)
HELPER_OBJ := $(UNIT_HELPERS:%.c=$(BUILD)/obj/%.o)
UNIT_HDRS := tests/unit/imgbuild.h tests/unit/imgfmt.h tests/unit/tgtenv.h tests/unit/raidsyn.h

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(HDRS) $(UNIT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc -c -o $@ $<

$(BUILD)/asan-obj/%.o: %.c $(HDRS) $(UNIT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_FLAGS) -Isrc -c -o $@ $<

$(BUILD)/libtest.a: $(LIB_OBJ) $(HELPER_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libtest-asan.a: $(ASAN_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libtest.a $(HDRS) $(UNIT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc -o $@ $< -Wl,--whole-archive $(BUILD)/libtest.a -Wl,--no-whole-archive \
		-lcmocka $(LIBS)

$(BUILD)/asan/%: tests/unit/%.c $(BUILD)/libtest-asan.a $(HDRS) $(UNIT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_FLAGS) -Isrc -o $@ $< -Wl,--whole-archive $(BUILD)/libtest-asan.a \
		-Wl,--no-whole-archive -lcmocka $(LIBS)

unit: $(UNIT_BIN) $(BUILD)/tests/mkraid

# mkraid: writes synthesised BIOS RAID member images of all eleven formats (a test helper, not a test:
# tests/cmd/dmraid.t, dmraid-formats.t, raidfmt.t; the test VM's /partmap/mkraid). Links libc only.
$(BUILD)/tests/mkraid: tests/unit/mkraid.c tests/unit/raidsyn.c tests/unit/raidsyn.h src/crc32.c src/util.h src/ptable.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc -o $@ tests/unit/mkraid.c tests/unit/raidsyn.c src/crc32.c
asan: $(ASAN_BIN)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_table.c $(FUZZ_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-DFUZZ_TYPE=\"$*\" -Isrc -o $@ $< $(FUZZ_SRC) $(LIBS)

$(BUILD)/fuzz/fuzz_img_%: tests/fuzz/fuzz_image.c $(FUZZ_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-DFUZZ_FORMAT=\"$*\" -Isrc -o $@ $< $(FUZZ_SRC) $(LIBS)

# the device-mapper table text parser (an explicit rule: it wins over fuzz_% above)
$(BUILD)/fuzz/fuzz_dmtable: tests/fuzz/fuzz_dmtable.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Isrc -o $@ $< $(LIB_SRC) $(LIBS)

# the BIOS RAID readers, their assembly and tables (explicit too)
$(BUILD)/fuzz/fuzz_raid: tests/fuzz/fuzz_raid.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Isrc -o $@ $< $(LIB_SRC) $(LIBS)

fuzz: $(FUZZ_BIN)

# warning-free with clang too (part of make check)
clang-build:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/clang CC=$(CLANG) WERROR=1 $(BUILD)/clang/partmap

# tests/install-deps.sh is the one list of packages, by purpose (build, demo, test, deb)
deps:
	@tests/install-deps.sh build test

check: deps
	$(MAKE) --no-print-directory WERROR=1 all unit asan static
	$(MAKE) --no-print-directory clang-build
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory vm
	@tests/run-all.sh $(BUILD)

# the test VM: Debian's kernel (unpacked, not installed), an initramfs with the static binary
vm: $(BUILD)/static/partmap
	tests/vm/fetch-kernel.sh $(BUILD)/vm/kernel
	tests/vm/mkdata.sh $(BUILD)/vm/data >/dev/null
	tests/vm/mkinitramfs.sh $(BUILD)/vm/kernel $(BUILD)/static/partmap $(BUILD)/vm/initramfs.cpio.gz

demo:
	@tests/install-deps.sh build demo
	@$(MAKE) --no-print-directory all
	@tests/demo.sh $(BUILD)/partmap samples/disk.img

# a fresh Debian 12 (mmdebstrap, cached in PARTMAP_FRESH_CACHE): clone, make demo, install, make deb
fresh-check:
	prove -v --exec bash tests/fresh/fresh.t

bench: all
	bench/list.sh $(BUILD)/partmap

clean:
	rm -rf $(BUILD)

$(BUILD)/fuzz/mkseeds: tests/fuzz/mkseeds.c $(UNIT_HELPERS) $(LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc -o $@ $< $(UNIT_HELPERS) $(LIB_SRC) $(LIBS)

fuzz: $(BUILD)/fuzz/mkseeds
