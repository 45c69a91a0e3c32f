# mxbench.mk - the SMTP load generator $(BUILD)/mxbench (issue 7), included
# by the top Makefile: `make mxbench`, and part of `make bench-build`.
# Compiled with the top Makefile's CFLAGS; needs liburing, pthreads and, for
# --starttls, BoringSSL: only bench/mxbench_tls.c includes its headers, so
# only its object gets $(SSL_INC).

MXB_SRCS := $(sort $(wildcard bench/mxbench*.c))
MXB_OBJS := $(MXB_SRCS:%.c=$(BUILD)/%.o)
MXB_BIN  := $(BUILD)/mxbench
MXB_LIBS := -luring -lpthread -lm
# Everything but main, for the cmocka tests tests/unit/test_mxbench_*.c:
# their own pattern rule (the shorter stem wins over the top Makefile's
# tests rule) links this archive in front of libmxring.a.
MXB_ALIB := $(BUILD)/libmxbench.a

mxbench: $(MXB_BIN)

$(BUILD)/bench/mxbench_tls.o: private CFLAGS += $(SSL_INC)

$(MXB_BIN): $(MXB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(MXB_LIBS) $(SSL_LIB)

$(MXB_ALIB): $(filter-out $(BUILD)/bench/mxbench.o,$(MXB_OBJS))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test_mxbench_%: tests/unit/test_mxbench_%.c $(MXB_ALIB) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Ibench -o $@ $< $(MXB_ALIB) $(LIB) -lcmocka $(LIBS) $(SSL_LIB)

bench-build: $(MXB_BIN)

-include $(MXB_OBJS:.o=.d)

.PHONY: mxbench bench-build
