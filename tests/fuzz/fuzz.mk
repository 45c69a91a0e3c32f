# tests/fuzz/fuzz.mk - libFuzzer targets, included by the top Makefile.
#   make fuzz-build        build $(FUZZ_BUILD)/fuzz_<name> for every target
#   make fuzz              run each target FUZZ_SECONDS (default 60) s; fail on a finding
#   make fuzz-smoke        the same for FUZZ_SMOKE_SECONDS (default 5) s (part of make test)
# Each run works on $(FUZZ_BUILD)/corpus-<name>, seeded from tests/fuzz/corpus/<name>
# (never written to); crashes land in $(FUZZ_BUILD)/crash-<name>-*. An optional
# tests/fuzz/<name>.dict is passed as the dictionary.
#
# Adding a target: write tests/fuzz/fuzz_<name>.c, a seed corpus in
# tests/fuzz/corpus/<name>/, and one line below naming the sources it needs.

FUZZ_CC            ?= clang
FUZZ_BUILD         ?= build-fuzz
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_CFLAGS        := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                      -Icore -Ilog -Inet
FUZZ_LIBS          := -lcrypt -lz -lpthread
FUZZ_RUN_FLAGS     ?= -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
FUZZ_TARGETS       :=

# fuzz_target - $(1) target name, $(2) the core/log/net sources it links.
define fuzz_target
FUZZ_TARGETS += $(1)
$(FUZZ_BUILD)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(2) $$(wildcard tests/fuzz/*.h core/*.h log/*.h net/*.h)
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  FUZZCC  $$@")
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ tests/fuzz/fuzz_$(1).c $(2) $$(FUZZ_LIBS)
endef

$(eval $(call fuzz_target,smtp_parse,core/smtp_parse.c core/util.c))
$(eval $(call fuzz_target,smtp_data,core/smtp_data.c core/util.c))
$(eval $(call fuzz_target,smtp_bdat,core/smtp_bdat.c core/util.c))
$(eval $(call fuzz_target,config,core/config.c core/config_types.c core/dnsbl_site.c core/routes.c core/util.c))
$(eval $(call fuzz_target,uri,core/uri.c))
$(eval $(call fuzz_target,http,core/http_req.c))
$(eval $(call fuzz_target,auth,core/auth.c core/util.c))
$(eval $(call fuzz_target,dnsmsg,core/dnsmsg.c))
$(eval $(call fuzz_target,hostsfile,core/hostsfile.c))
$(eval $(call fuzz_target,clamd,core/clamd.c))
$(eval $(call fuzz_target,milter,core/milter.c core/milter_hdr.c core/util.c))
$(eval $(call fuzz_target,dir,core/dir.c core/util.c))
$(eval $(call fuzz_target,mxlog,$(filter-out tools/mxlog/main.c tools/mxlog/follow.c \
    tools/mxlog/why.c tools/mxlog/stats.c tools/mxlog/report.c tools/mxlog/out.c \
    tools/mxlog/agg.c,$(wildcard tools/mxlog/*.c))))
$(eval $(call fuzz_target,journal,core/journal.c core/journal_recover.c))
$(eval $(call fuzz_target,smtpc,core/smtpc.c core/smtpc_reply.c core/reply.c core/util.c))
$(eval $(call fuzz_target,routes,core/routes.c core/util.c))
$(eval $(call fuzz_target,proxy,core/proxy.c core/addr.c core/journal.c))
$(eval $(call fuzz_target,session,core/session.c core/session_cmd.c core/session_auth.c core/session_log.c core/session_bdat.c core/session_milter.c core/addr.c \
    core/smtp_parse.c core/smtp_data.c core/smtp_bdat.c \
    core/config.c core/config_types.c core/dnsbl_site.c core/routes.c core/dir.c core/snap.c core/reply.c core/auth.c core/mhist.c core/util.c $(wildcard log/*.c)))

# fuzz_run - run target $(1) for $(2) seconds on its private corpus copy.
define fuzz_run
	@mkdir -p $(FUZZ_BUILD)/corpus-$(1)
	$(Q)cp -R tests/fuzz/corpus/$(1)/. $(FUZZ_BUILD)/corpus-$(1)/
	@echo "  FUZZ    $(1) for $(2) s"
	$(Q)$(FUZZ_BUILD)/fuzz_$(1) $(FUZZ_RUN_FLAGS) -max_total_time=$(2) \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$(1)- \
	    $(patsubst %,-dict=%,$(wildcard tests/fuzz/$(1).dict)) $(FUZZ_BUILD)/corpus-$(1)
endef

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-smoke: $(FUZZ_TARGETS:%=fuzz-smoke-%)

fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	$(call fuzz_run,$*,$(FUZZ_SECONDS))

fuzz-smoke-%: $(FUZZ_BUILD)/fuzz_%
	$(call fuzz_run,$*,$(FUZZ_SMOKE_SECONDS))

.PHONY: fuzz-build fuzz fuzz-smoke
