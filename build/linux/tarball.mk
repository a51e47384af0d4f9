# Installs Porthole from this archive (made by `make dist`; it replaces the
# Makefile `fyne package` writes, which knows only the binary, the desktop
# file and one pixmap, not the hicolor icons and the AppStream metadata).
#
#   sudo make install          to /usr/local (PREFIX=/usr to change)
#   sudo make uninstall
#   make user-install          to ~/.local
#   make user-uninstall

PREFIX ?= /usr/local
APPID  := app.porthole.Porthole
SIZES  := 16 24 32 48 64 128 256 512

# The tree below was staged under usr/local or usr, depending on the
# machine fyne ran on.
SRC := $(firstword $(wildcard usr/local/bin/porthole usr/bin/porthole))
SRC := $(patsubst %/bin/porthole,%,$(SRC))

default:
	@echo 'Run "sudo make install" (to $(PREFIX)) or "make user-install" (to ~/.local).'

install: copy-files
	-update-desktop-database -q $(DESTDIR)$(PREFIX)/share/applications 2>/dev/null
	-gtk-update-icon-cache -q -t $(DESTDIR)$(PREFIX)/share/icons/hicolor 2>/dev/null

copy-files:
	install -Dm0755 $(SRC)/bin/porthole $(DESTDIR)$(PREFIX)/bin/porthole
	install -Dm0644 $(SRC)/share/applications/$(APPID).desktop $(DESTDIR)$(PREFIX)/share/applications/$(APPID).desktop
	install -Dm0644 $(SRC)/share/metainfo/$(APPID).metainfo.xml $(DESTDIR)$(PREFIX)/share/metainfo/$(APPID).metainfo.xml
	install -Dm0644 $(SRC)/share/icons/hicolor/scalable/apps/$(APPID).svg $(DESTDIR)$(PREFIX)/share/icons/hicolor/scalable/apps/$(APPID).svg
	for s in $(SIZES); do \
		install -Dm0644 $(SRC)/share/icons/hicolor/$${s}x$${s}/apps/$(APPID).png \
			$(DESTDIR)$(PREFIX)/share/icons/hicolor/$${s}x$${s}/apps/$(APPID).png || exit 1; \
	done

uninstall:
	-rm -f $(DESTDIR)$(PREFIX)/bin/porthole
	-rm -f $(DESTDIR)$(PREFIX)/share/applications/$(APPID).desktop
	-rm -f $(DESTDIR)$(PREFIX)/share/metainfo/$(APPID).metainfo.xml
	-rm -f $(DESTDIR)$(PREFIX)/share/icons/hicolor/*/apps/$(APPID).png
	-rm -f $(DESTDIR)$(PREFIX)/share/icons/hicolor/scalable/apps/$(APPID).svg

user-install:
	$(MAKE) copy-files PREFIX=$(HOME)/.local DESTDIR=
	sed -i -e 's,^Exec=porthole,Exec=$(HOME)/.local/bin/porthole,' $(HOME)/.local/share/applications/$(APPID).desktop

user-uninstall:
	$(MAKE) uninstall PREFIX=$(HOME)/.local DESTDIR=

.PHONY: default install copy-files uninstall user-install user-uninstall
