# test/valgrind.mk: make valgrind, included by the Makefile: gv-simxen,
# gv-backend and gv-frontend under valgrind memcheck in an end-to-end flow
# on the simulated Xen (test/valgrind-e2e.sh; VALGRIND_SIZE bytes verified
# per DMA strategy). Uses the plain build: ASan binaries cannot run under it.
VALGRIND_SIZE ?= 2M
.PHONY: valgrind
valgrind: $(PROGS)
	GV_BUILD=$(CURDIR)/$(BUILD) sh test/valgrind-e2e.sh --size $(VALGRIND_SIZE)
