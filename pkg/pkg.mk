# pkg/pkg.mk - man pages and the Debian package, included by the top Makefile.
#   make man    $(BUILD)/man/mxringd.8.gz, mxringd.conf.5.gz (from mxringd -M),
#               and the section 1 pages of pkg/man/*.1 (mxlog, mxbench, ...)
#   make deb    $(BUILD)/mxring_<version>_amd64.deb (pkg/mkdeb.sh, dpkg-deb)

MXRING_VERSION := $(shell sed -n 's/^\#define MXRING_VERSION "\(.*\)"/\1/p' net/main.c)
MAN1_PAGES     := $(patsubst pkg/man/%.1,$(BUILD)/man/%.1.gz,$(wildcard pkg/man/*.1))
MAN_PAGES      := $(BUILD)/man/mxringd.8.gz $(BUILD)/man/mxringd.conf.5.gz $(MAN1_PAGES)

man: $(MAN_PAGES)

$(BUILD)/man/mxringd.8.gz: pkg/man/mxringd.8 net/main.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  MAN     $@")
	$(Q)sed 's/@VERSION@/$(MXRING_VERSION)/' $< | gzip -9n > $@

$(BUILD)/man/%.1.gz: pkg/man/%.1 net/main.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  MAN     $@")
	$(Q)sed 's/@VERSION@/$(MXRING_VERSION)/' $< | gzip -9n > $@

$(BUILD)/man/mxringd.conf.5.gz: $(BUILD)/mxringd
	@mkdir -p $(@D)
	@$(if $(Q),echo "  MAN     $@")
	$(Q)$(BUILD)/mxringd -M | gzip -9n > $@

deb: all mxbench man
	$(Q)pkg/mkdeb.sh $(BUILD) $(MXRING_VERSION)

.PHONY: man deb
