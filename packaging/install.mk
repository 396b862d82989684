# packaging/install.mk: make install, included by the Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [LIBDIR=PREFIX/lib]
#
# make install is the three parts below; debian/rules installs each into
# its own package:
#   install-daemon  (grant-virtio) programs: gv-backend to sbin, the others
#                   to bin; man pages; the systemd unit (paths substituted);
#                   the xenstore schema (for reference: gv-schema has it
#                   built in); examples. Config files in SYSCONFDIR are
#                   installed only if absent (never overwrites an
#                   administrator's edits).
#   install-lib     (libgrant-virtio0) the guest library
#                   LIBDIR/libgrant-virtio.so.VERSION and its soname link
#                   libgrant-virtio.so.0
#   install-dev     (libgrant-virtio-dev) the link libgrant-virtio.so, the
#                   headers grant_virtio.h and grant_virtio_types.h in
#                   INCLUDEDIR, LIBDIR/pkgconfig/grant-virtio.pc,
#                   examples/gv-read.c in DEVDOCDIR/examples, and the
#                   man page libgrant-virtio(3)
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR     = $(PREFIX)/sbin
BINDIR      = $(PREFIX)/bin
MANDIR      = $(PREFIX)/share/man
DATADIR     = $(PREFIX)/share/grant-virtio
DOCDIR      = $(PREFIX)/share/doc/grant-virtio
UNITDIR    ?= $(PREFIX)/lib/systemd/system
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DEVDOCDIR  ?= $(DOCDIR)
INSTALL    ?= install
BIN_PROGS   = gv-frontend gv-xl gv-simxen gv-schema

.PHONY: install install-daemon install-lib install-dev
install: install-daemon install-lib install-dev

install-lib: $(LIBGV)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)
	$(INSTALL) -m 644 $(LIBGV) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(LIBGV)) $(DESTDIR)$(LIBDIR)/$(LIBGV_SONAME)

install-dev: $(LIBGV)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(DEVDOCDIR)/examples $(DESTDIR)$(MANDIR)/man3
	ln -sf $(LIBGV_SONAME) $(DESTDIR)$(LIBDIR)/libgrant-virtio.so
	$(INSTALL) -m 644 frontend/grant_virtio.h common/grant_virtio_types.h $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(LIBGV_VERSION)|g' \
	  packaging/grant-virtio.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/grant-virtio.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/grant-virtio.pc
	$(INSTALL) -m 644 examples/gv-read.c $(DESTDIR)$(DEVDOCDIR)/examples/
	$(INSTALL) -m 644 man/libgrant-virtio.3 $(DESTDIR)$(MANDIR)/man3/

install-daemon: $(PROGS)
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
