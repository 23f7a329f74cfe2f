# mk/cli.mk: the calypso command-line tool (programs/calypso/).
#
# The tool uses the public API alone: it is compiled with -I. (calypso.h)
# but not -Isrc, and linked against the amalgamation, libcalypso.a.
# tests/test_cli.c runs the built binary, so it is built first.

CLI_SRC    := $(sort $(wildcard programs/calypso/*.c))
CLI_HDR    := $(wildcard programs/calypso/*.h)
CLI_CFLAGS := -std=c11 $(OPT) $(SAN) $(WARN) -I.

PROGRAMS += $(BUILD)/calypso

$(BUILD)/calypso: $(CLI_SRC) $(CLI_HDR) calypso.h $(BUILD)/libcalypso.a
	$(CC) $(CLI_CFLAGS) $(CLI_SRC) -o $@ $(BUILD)/libcalypso.a $(LDLIBS_ALL)

$(BUILD)/test_cli $(BUILD)/test_cli_ns $(BUILD)/test_reader: $(BUILD)/calypso

# `make install` and `make uninstall` take the tool along.
.PHONY: install-cli uninstall-cli
install: install-cli
uninstall: uninstall-cli

install-cli: $(BUILD)/calypso
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/calypso $(DESTDIR)$(PREFIX)/bin/calypso

uninstall-cli:
	rm -f $(DESTDIR)$(PREFIX)/bin/calypso
