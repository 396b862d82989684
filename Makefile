# grant-virtio: one Makefile for everything.
#   make            build all programs and tests (-Wall -Wextra -Werror)
#   make test       build and run the tests; ends with "N passed, M failed"
#   make asan       the same build with AddressSanitizer + UBSan, in build-asan/
#   make asan-test  run the tests on the sanitizer build
#   make deps       install the Debian packages the build and tests need
#
# Layout rule: in each of common/ sim/ frontend/ backend/ tools/, a file named
# gv-*.c is a program; every other .c is part of that folder's library (except
# common/platform_xen_dom0.c, dom0's libxenctrl part, below). bench/gv-*.c are
# programs too; test/test_*.c are test programs, test/*.sh test scripts.
#
# Each program links only what it uses: a guest program (frontend/, bench/,
# the frontend tests) links libfrontend and libcommon and not dom0's
# libxenctrl; a dom0 program (backend/) links libbackend, libcommon and
# platform_xen_dom0.o with libxenctrl; sim/ links libsim and libcommon;
# tools/ links libtools (the simulated toolstack) and libcommon.

BUILD   ?= build
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS = -D_GNU_SOURCE -D__XEN_TOOLS__ -Icommon -I$(BUILD)/gen -MMD -MP
GUEST_LDLIBS = -lxenstore -lxengnttab -lxenevtchn -lpthread -lm
# NBD disks through libnbd (libnbd-dev, tools/install-deps.sh); a build root
# without it (make NBD=0, or no libnbd.pc) builds gv-backend without NBD disks
NBD ?= $(shell pkg-config --exists libnbd 2>/dev/null && echo 1 || echo 0)
ifeq ($(NBD),1)
CPPFLAGS += -DGVBE_HAVE_NBD
NBD_LDLIBS = -lnbd
endif
DOM0_LDLIBS  = -lxenstore -lxengnttab -lxenevtchn -lxenctrl -luring $(NBD_LDLIBS) -lpthread -lm
LDLIBS   = $(DOM0_LDLIBS)

LIBDIRS  = frontend backend sim tools common
DOM0_SRCS = common/platform_xen_dom0.c
DOM0_OBJS = $(patsubst %.c,$(BUILD)/%.o,$(DOM0_SRCS))
# Benchmark-only sources: built into gv-backend-bench (with -DGVBE_BENCH), never
# into a library or the installed daemon.
BENCH_ONLY = backend/direct.c
lib_srcs = $(filter-out $(1)/gv-%.c $(DOM0_SRCS) $(BENCH_ONLY),$(wildcard $(1)/*.c))
lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(call lib_srcs,$(1)))
lib      = $(foreach d,$(1),$(BUILD)/lib$(d).a)
LIBS     = $(call lib,$(LIBDIRS))

# What a program links, by where its source lives: the libraries, then the
# system libraries. Anything not listed links everything (with dom0's part).
GUEST_LINK = $(call lib,frontend common) $(GUEST_LDLIBS)
DOM0_LINK  = $(call lib,backend common) $(DOM0_OBJS) $(DOM0_LDLIBS)
SIM_LINK   = $(call lib,sim common) $(GUEST_LDLIBS)
ALL_LINK   = $(LIBS) $(DOM0_OBJS) $(DOM0_LDLIBS)
link_of    = $(or $(LINK_$(1)),$(ALL_LINK))
LINK_frontend = $(GUEST_LINK)
LINK_bench    = $(GUEST_LINK)
LINK_backend  = $(DOM0_LINK)
LINK_sim      = $(SIM_LINK)
LINK_tools    = $(call lib,tools common) $(GUEST_LDLIBS)
# Tests: the frontend's run as a guest program does; the rest link everything.
FRONTEND_TESTS = test_virtqueue test_dma test_e2e_frontend test_hostile_backend test_schema
$(foreach t,$(FRONTEND_TESTS),$(eval LINK_$(t) = $(GUEST_LINK)))
# the link inputs of a LINK_ line (make's prerequisites): the .a and .o files
link_deps  = $(filter %.a %.o,$(call link_of,$(1)))

PROG_SRCS = $(foreach d,$(LIBDIRS) bench,$(wildcard $(d)/gv-*.c))
PROGS    = $(addprefix $(BUILD)/,$(notdir $(basename $(PROG_SRCS))))
TEST_SUPPORT = $(patsubst %.c,$(BUILD)/%.o,$(filter-out test/test_%.c,$(wildcard test/*.c)))
TESTS    = $(patsubst test/%.c,$(BUILD)/test/%,$(wildcard test/test_*.c))
GEN      = $(BUILD)/gen/xs_keys.h $(BUILD)/gen/xs_rules.h
# gv-backend-bench: the daemon with make bench's modes (--bench-direct,
# --map-batch 1), from the same sources compiled with -DGVBE_BENCH.
BE_BENCH_OBJS = $(patsubst %.c,$(BUILD)/bench-be/%.o,$(call lib_srcs,backend) $(BENCH_ONLY) backend/gv-backend.c)
PROGS   += $(BUILD)/gv-backend-bench

# libgrant-virtio.so: the guest library as a shared library (make install;
# Debian's libgrant-virtio0 and libgrant-virtio-dev). The library sources of
# frontend/ and common/ compiled again as position-independent code with
# GV_GUEST_ONLY (no reference to dom0's part, not even a weak one), linked
# against the guest's Xen libraries only, exporting exactly the functions of
# frontend/grant_virtio.h (frontend/libgrant-virtio.map). Programs of this
# tree keep linking the static libfrontend.a; test/test_libgv.sh installs the
# shared one and builds examples/gv-read.c against what was installed.
LIBGV_SOVERSION = 0
LIBGV_VERSION   = 0.3.0
LIBGV_SONAME    = libgrant-virtio.so.$(LIBGV_SOVERSION)
LIBGV           = $(BUILD)/libgrant-virtio.so.$(LIBGV_VERSION)
LIBGV_MAP       = frontend/libgrant-virtio.map
LIBGV_OBJS      = $(patsubst %.c,$(BUILD)/pic/%.o,$(call lib_srcs,frontend) $(call lib_srcs,common))
# -z defs: every symbol resolved at link time (not under the sanitizers,
# whose runtime the program brings)
LIBGV_ZDEFS     = $(if $(findstring sanitize,$(LDFLAGS)),,-Wl,-z,defs)

.SECONDARY:
.PHONY: check demo bench all test asan asan-test deps clean schema-doc xen-test xen-bench \
        systemd-test
all: $(PROGS) $(TESTS) $(DOM0_OBJS) $(LIBGV)

# xenstore-schema/gen.sh, the one reader of virtio.tsv: the key names, the
# rules gv-schema checks, the Markdown table
$(BUILD)/gen/xs_keys.h: xenstore-schema/virtio.tsv xenstore-schema/gen.sh
	@mkdir -p $(dir $@)
	sh xenstore-schema/gen.sh header $< > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/xs_rules.h: xenstore-schema/virtio.tsv xenstore-schema/gen.sh
	@mkdir -p $(dir $@)
	sh xenstore-schema/gen.sh rules $< > $@.tmp && mv $@.tmp $@

schema-doc: xenstore-schema/virtio.tsv xenstore-schema/gen.sh
	sh xenstore-schema/gen.sh doc $< > xenstore-schema/README.md.tmp && \
	  mv xenstore-schema/README.md.tmp xenstore-schema/README.md

$(BUILD)/%.o: %.c $(GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c $< -o $@

$(BUILD)/bench-be/%.o: %.c $(GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DGVBE_BENCH $(WARN) $(CFLAGS) -c $< -o $@

$(BUILD)/pic/%.o: %.c $(GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DGV_GUEST_ONLY -fPIC $(WARN) $(CFLAGS) -c $< -o $@

$(LIBGV): $(LIBGV_OBJS) $(LIBGV_MAP)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIBGV_SONAME) \
	  -Wl,--version-script=$(LIBGV_MAP) $(LIBGV_ZDEFS) -Wl,--as-needed \
	  -o $@ $(LIBGV_OBJS) $(GUEST_LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(LIBGV_SONAME)
	ln -sf $(LIBGV_SONAME) $(BUILD)/libgrant-virtio.so

$(BUILD)/gv-backend-bench: $(BE_BENCH_OBJS) $(LIBS) $(DOM0_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BE_BENCH_OBJS) $(LIBS) $(DOM0_OBJS) $(LDLIBS)

define lib_rule
$(BUILD)/lib$(1).a: $(call lib_objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIBDIRS),$(eval $(call lib_rule,$(d))))

define prog_rule
$(BUILD)/$(notdir $(1:.c=)): $(BUILD)/$(1:.c=.o) $(call link_deps,$(patsubst %/,%,$(dir $(1))))
	$(CC) $(CFLAGS) $(LDFLAGS) -o $$@ $$< $(call link_of,$(patsubst %/,%,$(dir $(1))))
endef
$(foreach p,$(PROG_SRCS),$(eval $(call prog_rule,$(p))))

define test_rule
$(BUILD)/test/$(1): $(BUILD)/test/$(1).o $(BUILD)/test/libtestsupport.a $(call link_deps,$(1))
	$(CC) $(CFLAGS) $(LDFLAGS) -o $$@ $$< $(BUILD)/test/libtestsupport.a $(call link_of,$(1))
endef
$(foreach t,$(notdir $(TESTS)),$(eval $(call test_rule,$(t))))

# The harness as an archive: a test links only the parts it calls.
$(BUILD)/test/libtestsupport.a: $(TEST_SUPPORT)
	rm -f $@ && ar rcs $@ $^

# GV_TEST_CC, GV_TEST_SANITIZE: how test/test_libgv.sh builds the example
# against the installed library (the sanitizer build's needs their runtime)
test: all
	BUILD=$(BUILD) GV_TEST_CC="$(CC)" sh test/run-tests.sh

asan:
	$(MAKE) BUILD=build-asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" all
asan-test: asan
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  GV_TEST_CC=clang GV_TEST_SANITIZE="-fsanitize=address,undefined" sh test/run-tests.sh

deps:
	sh tools/install-deps.sh

# Real Xen 4.20 under QEMU (software emulation); see xen-test/run.sh. Not part of `make test` yet.
# make xen-test [XEN_SCENARIOS="name..."]
xen-test:
	sh xen-test/run.sh $(XEN_SCENARIOS)

# The systemd unit under a real systemd (systemd-nspawn --boot of a Debian 12
# root) on the simulated Xen; needs root. See systemd-test/run.sh.
systemd-test: all
	BUILD=$(BUILD) sh systemd-test/run.sh

# The pair against Linux's xen-blkfront/xen-blkback on one dom0 ramdisk, same boot (xen-test/bench.sh)
xen-bench:
	XEN_SCENARIO_LIST=bench.list GV_XEN_TEST_LIMIT=$${GV_XEN_TEST_LIMIT:-1500} sh xen-test/run.sh; s=$$?; sh xen-test/bench-report.sh && exit $$s

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Benchmarks on the simulated Xen (docs/benchmarks.md): make bench [BENCH_ARGS=--quick]
bench: $(PROGS)
	GV_BUILD=$(CURDIR)/$(BUILD) sh bench/run.sh $(BENCH_ARGS)

# Everything CI runs: tests, tests under sanitizers, real Xen (see tools/check.sh).
check:
	sh tools/check.sh

# The main job: the pair on the simulated Xen (see README).
demo: $(PROGS)
	GV_BUILD=$(CURDIR)/$(BUILD) sh tools/demo.sh

# Fuzz targets and their corpus replay (fuzz/fuzz.mk), the stress run (make stress).
include fuzz/fuzz.mk

# make install [PREFIX=/usr/local] [DESTDIR=] (packaging/install.mk; docs/admin.md)
include packaging/install.mk

# make valgrind: the programs under memcheck end to end (test/valgrind.mk)
include test/valgrind.mk
