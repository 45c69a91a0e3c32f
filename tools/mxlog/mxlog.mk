# tools/mxlog/mxlog.mk - the receivelog analyzer $(BUILD)/mxlog (issue 13),
# included by the top Makefile; part of `make all`. Its objects (all but
# main.c) form $(BUILD)/libmxlog.a, which the unit tests test_mxlog_*.c and
# the fuzz target link. Needs only zlib.

MXLOG_SRCS := $(sort $(wildcard tools/mxlog/*.c))
MXLOG_OBJS := $(MXLOG_SRCS:%.c=$(BUILD)/%.o)
MXLOG_LIB  := $(BUILD)/libmxlog.a
MXLOG_BIN  := $(BUILD)/mxlog

all: $(MXLOG_BIN)
mxlog: $(MXLOG_BIN)

$(MXLOG_LIB): $(filter-out $(BUILD)/tools/mxlog/main.o,$(MXLOG_OBJS))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(MXLOG_BIN): $(BUILD)/tools/mxlog/main.o $(MXLOG_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lz -lpthread

# unit tests of mxlog: the generic test rule plus libmxlog.a (a shorter stem
# wins, so this rule is the one used for test_mxlog_*)
$(BUILD)/tests/test_mxlog_%: tests/unit/test_mxlog_%.c $(LIB) $(MXLOG_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Itools/mxlog -o $@ $< $(MXLOG_LIB) $(LIB) -lcmocka $(LIBS)

-include $(MXLOG_OBJS:.o=.d)

.PHONY: mxlog
