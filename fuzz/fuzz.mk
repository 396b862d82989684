# fuzz/fuzz.mk: fuzz targets (fuzz/fuzz_<target>.c), included by the Makefile.
#
#   every build   $(BUILD)/fuzz/replay_<target>: the target without libFuzzer,
#                 run over fuzz/corpus/<target>/ by test/test_fuzz_corpus.sh
#   make fuzz     each target under libFuzzer + ASan + UBSan (clang), for
#                 FUZZ_SECONDS (60) each, new inputs kept in build-fuzz/corpus/;
#                 crashes land in build-fuzz/crashes/ (copy one into
#                 fuzz/corpus/<target>/ to keep it as a regression input)

FUZZ_TARGETS  = $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAYS  = $(addprefix $(BUILD)/fuzz/replay_,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 60
FUZZ_BUILD    = build-fuzz
FUZZ_CFLAGS   = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

all: $(FUZZ_REPLAYS)

$(BUILD)/fuzz/replay_%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/replay.o $(LIBS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/fuzz/replay.o $(LIBS) $(LDLIBS)

.PHONY: fuzz fuzz-build
fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang \
	  CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" LDFLAGS="-fsanitize=address,undefined" \
	  $(foreach d,$(LIBDIRS),$(FUZZ_BUILD)/lib$(d).a) \
	  $(addprefix $(FUZZ_BUILD)/fuzz/fuzz_,$(addsuffix .o,$(FUZZ_TARGETS)))
	for t in $(FUZZ_TARGETS); do \
	  clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $(FUZZ_BUILD)/fuzzer_$$t \
	    $(FUZZ_BUILD)/fuzz/fuzz_$$t.o $(foreach d,$(LIBDIRS),$(FUZZ_BUILD)/lib$(d).a) \
	    $(LDLIBS) || exit 1; \
	done

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes/$$t; \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzzer_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t/ -max_len=8192 \
	    $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t 2>&1 | tee $(FUZZ_BUILD)/fuzz_$$t.log | \
	    grep -E '^#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|ERROR|SUMMARY' ; \
	  grep -q 'ERROR: ' $(FUZZ_BUILD)/fuzz_$$t.log && { echo "fuzz_$$t: FOUND A BUG (see $(FUZZ_BUILD)/crashes/$$t)"; exit 1; }; \
	done; true

# The stress run (tools/gv-stress.sh): attach, I/O, detach with faults injected.
# make stress [STRESS_CYCLES=200]; the long run: sh tools/gv-stress.sh -n 20000
STRESS_CYCLES ?= 200
.PHONY: stress
stress: $(PROGS)
	GV_BUILD=$(CURDIR)/$(BUILD) sh tools/gv-stress.sh -n $(STRESS_CYCLES)
