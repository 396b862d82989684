# packaging/install.mk: make install, included by the Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]
#
# Programs: gv-backend to sbin, the others to bin; man pages; the systemd
# unit (paths substituted); the xenstore schema (for reference: gv-schema
# has it built in); examples. Config files in SYSCONFDIR are installed only
# if absent (never overwrites an administrator's edits).
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR     = $(PREFIX)/sbin
BINDIR      = $(PREFIX)/bin
MANDIR      = $(PREFIX)/share/man
DATADIR     = $(PREFIX)/share/grant-virtio
DOCDIR      = $(PREFIX)/share/doc/grant-virtio
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install
BIN_PROGS   = gv-frontend gv-xl gv-simxen gv-schema

.PHONY: install
install: $(PROGS)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/grant-virtio $(DESTDIR)$(SYSCONFDIR)/default
	$(INSTALL) -m 755 $(BUILD)/gv-backend $(DESTDIR)$(SBINDIR)/
	for p in $(BIN_PROGS); do \
	  if [ -x $(BUILD)/$$p ]; then $(INSTALL) -m 755 $(BUILD)/$$p $(DESTDIR)$(BINDIR)/ || exit 1; fi; \
	done
	$(INSTALL) -m 644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 755 tools/gv-stress.sh $(DESTDIR)$(BINDIR)/gv-stress
	$(INSTALL) -m 644 xenstore-schema/virtio.tsv tools/lib.sh $(DESTDIR)$(DATADIR)/
	$(INSTALL) -m 644 examples/guest.cfg packaging/backend.conf $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 644 docs/admin.md docs/transport.md $(DESTDIR)$(DOCDIR)/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  packaging/grant-virtio-backend.service > $(DESTDIR)$(UNITDIR)/grant-virtio-backend.service
	chmod 644 $(DESTDIR)$(UNITDIR)/grant-virtio-backend.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/grant-virtio/backend.conf ] || \
	  $(INSTALL) -m 644 packaging/backend.conf $(DESTDIR)$(SYSCONFDIR)/grant-virtio/backend.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/grant-virtio-backend ] || \
	  $(INSTALL) -m 644 packaging/grant-virtio-backend.default \
	    $(DESTDIR)$(SYSCONFDIR)/default/grant-virtio-backend
