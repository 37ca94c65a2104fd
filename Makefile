# itl-sign: one static archive per layer, two binaries, Check unit tests, shell integration tests.
#
#   make            build everything into $(BUILD)/
#   make demo       the whole job on a throwaway SoftHSM2 token (installs dependencies as root)
#   make check      every test: unit + integration + fuzz regression corpus, then the same under
#                   AddressSanitizer + UndefinedBehaviorSanitizer (installs dependencies as root)
#   make test       the tests once, in this build only (no sanitizer pass)
#   make asan       the tests under ASan + UBSan only
#   make valgrind   the unit tests under valgrind
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (default 300; slow ones twice that)
#   make bench      the benchmark (see bench/README.md)
#   make stress     the long crash-safety and load runs

BUILD ?= build
CC ?= cc
OPT ?= -O2 -g
SAN ?=
PKGS := p11-kit-1 yaml-0.1 openssl expat
# Only the daemon links libsystemd (sd_notify).
DAEMON_PKGS := libsystemd

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
DAEMON_CFLAGS := $(shell pkg-config --cflags $(DAEMON_PKGS) 2>/dev/null)
DAEMON_LIBS := $(shell pkg-config --libs $(DAEMON_PKGS) 2>/dev/null)

# p11-kit's headers have no version macros: itl-sign --version reports the one built against.
P11KIT_VERSION := $(shell pkg-config --modversion p11-kit-1 2>/dev/null)

# -Wformat-truncation (level 1, also in -Wall) is spelled out: a snprintf that may cut a message
# or a path must be checked or widened, never silenced (docs/design.md, the error convention).
# It is gcc's; clang (the fuzz build) has no such option and would refuse it under -Werror.
WFORMAT_TRUNCATION := $(shell $(CC) -Werror -Wformat-truncation -E -x c /dev/null >/dev/null 2>&1 \
	&& echo -Wformat-truncation)
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -Wall -Wextra -Werror -Wshadow \
	-DITL_P11KIT_VERSION='"$(P11KIT_VERSION)"' \
	-Wstrict-prototypes -Wmissing-prototypes -Wformat=2 $(WFORMAT_TRUNCATION) \
	-fstack-protector-strong \
	-I. $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN) -pthread $(LDFLAGS)

LAYERS := common format pkcs11 policy signer
# The binaries' main files are not part of their layer's archive.
DAEMON_MAIN := signer/itl-signd.c

layer_srcs = $(filter-out $(DAEMON_MAIN),$(wildcard $(1)/*.c))
layer_objs = $(patsubst %.c,$(BUILD)/%.o,$(call layer_srcs,$(1)))

LIB_common := $(BUILD)/libcommon.a
LIB_format := $(BUILD)/libformat.a
LIB_pkcs11 := $(BUILD)/libpkcs11tok.a
LIB_policy := $(BUILD)/libpolicy.a
LIB_signer := $(BUILD)/libsigner.a
# Link order: users before what they use.
LIBS := $(LIB_signer) $(LIB_policy) $(LIB_pkcs11) $(LIB_format) $(LIB_common)

TOOL_SRCS := $(wildcard tools/*.c)
TOOL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(TOOL_SRCS))
# tools/ objects other than main are shared with tests (command implementations).
TOOL_LIB_OBJS := $(filter-out $(BUILD)/tools/main.o,$(TOOL_OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
UNIT_HELPER_SRCS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(UNIT_HELPER_SRCS))

FAULT_SRCS := $(wildcard tests/faultp11/*.c)
FAULT_LIB := $(BUILD)/tests/libfaultp11.so
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/%,$(FUZZ_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

BINS := $(BUILD)/itl-sign $(BUILD)/itl-signd
# The phone simulator's decision half (tests/phone/README.md): format/ and common/ only.
PHONE_MODEL := $(BUILD)/tests/phone-model

.SECONDARY:

.PHONY: all deps demo check test unit integration asan valgrind fuzz fuzz-smoke fuzz-regress \
	bench stress format-check clean libs print-libs bins install uninstall deb deb-check

all: $(BINS) $(UNIT_BINS) $(FAULT_LIB) $(BENCH_BINS) $(FUZZ_BINS) $(PHONE_MODEL)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(foreach l,$(LAYERS),$(eval $(LIB_$(l)): $(call layer_objs,$(l)) ; @mkdir -p $$(dir $$@); rm -f $$@; ar rcs $$@ $$^))

$(BUILD)/itl-sign: $(TOOL_OBJS) $(LIBS)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TOOL_OBJS) $(LIBS) $(PKG_LIBS)

$(BUILD)/$(DAEMON_MAIN:.c=.o): CFLAGS_ALL += $(DAEMON_CFLAGS)
$(BUILD)/itl-signd: $(BUILD)/$(DAEMON_MAIN:.c=.o) $(LIBS)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIBS) $(PKG_LIBS) $(DAEMON_LIBS)

# A unit test links only the layer its name starts with (test_format_*.c: libformat), so each
# layer's tests build while other layers are being changed (with common/, which all use);
# test_tools_* link everything.
define unit_test_rule
$(BUILD)/tests/test_$(1)%: $(BUILD)/tests/unit/test_$(1)%.o $(UNIT_HELPER_OBJS) $(2)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$< $(UNIT_HELPER_OBJS) $(2) $$(PKG_LIBS) $$(CHECK_LIBS)
endef
$(eval $(call unit_test_rule,common,$(LIB_common)))
$(eval $(call unit_test_rule,format,$(LIB_format) $(LIB_common)))
$(eval $(call unit_test_rule,pkcs11,$(LIB_pkcs11) $(LIB_common)))
$(eval $(call unit_test_rule,policy,$(LIB_policy) $(LIB_common)))
$(eval $(call unit_test_rule,signer,$(LIBS)))
$(eval $(call unit_test_rule,tools,$(TOOL_LIB_OBJS) $(LIBS)))

$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

# The fault-injecting module is a PKCS#11 module: position independent, no sanitizer runtime
# of its own (it is loaded into sanitized and unsanitized processes alike).
$(FAULT_LIB): $(FAULT_SRCS)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -fPIC -shared -I. $(PKG_CFLAGS) \
		-o $@ $(FAULT_SRCS) -ldl -pthread

# Fuzz targets also build without libFuzzer, to replay the corpora in every test run.
$(BUILD)/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/standalone.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(PHONE_MODEL): tests/phone/phone_model.c $(LIB_format) $(LIB_common)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIB_format) $(LIB_common) $(PKG_LIBS)

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBS) $(PKG_LIBS)

# The layer archives, and their link line (users before what they use), for scripts that link
# their own binaries (tests/fuzz/run.sh): one list, here.
libs: $(LIBS)
print-libs:
	@echo $(LIBS)

deps:
	@tools/install-deps.sh

# ---- make install / uninstall (PREFIX, DESTDIR; debian/rules sets UNITDIR=/lib/systemd/system)
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/itl-sign
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
LIBDIR_SYSTEMD ?= $(PREFIX)/lib
UNITDIR ?= $(LIBDIR_SYSTEMD)/systemd/system
TMPFILESDIR ?= $(LIBDIR_SYSTEMD)/tmpfiles.d
SYSUSERSDIR ?= $(LIBDIR_SYSTEMD)/sysusers.d
SYSCONFDIR ?= /etc
INSTALL ?= install
DOC_FILES := README.md SECURITY.md $(sort $(wildcard docs/*.md)) \
	etc/itl-signd.yaml.example
# Installed files, for uninstall (the config only while it is the shipped one: see below).
INSTALLED := $(BINDIR)/itl-sign $(SBINDIR)/itl-signd $(MANDIR)/man1/itl-sign.1 \
	$(MANDIR)/man8/itl-signd.8 $(UNITDIR)/itl-signd.service $(UNITDIR)/itl-signd.socket \
	$(TMPFILESDIR)/itl-signd.conf $(SYSUSERSDIR)/itl-signd.conf $(SYSCONFDIR)/logrotate.d/itl-sign \
	$(addprefix $(DOCDIR)/,$(notdir $(DOC_FILES))) $(BASHCOMPDIR)/itl-sign

bins: $(BINS)

# The units name the installed daemon: /usr/sbin in the files, $(SBINDIR) once installed.
install: $(BINS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/itl-sign \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0755 $(BUILD)/itl-sign $(DESTDIR)$(BINDIR)/itl-sign
	$(INSTALL) -m 0755 $(BUILD)/itl-signd $(DESTDIR)$(SBINDIR)/itl-signd
	$(INSTALL) -m 0644 docs/itl-sign.1 $(DESTDIR)$(MANDIR)/man1/itl-sign.1
	$(INSTALL) -m 0644 docs/itl-signd.8 $(DESTDIR)$(MANDIR)/man8/itl-signd.8
	for u in itl-signd.service itl-signd.socket; do \
		sed -e 's|/usr/sbin/itl-signd|$(SBINDIR)/itl-signd|g' -e 's|/etc/itl-sign/|$(SYSCONFDIR)/itl-sign/|g' signer/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	$(INSTALL) -m 0644 signer/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/itl-signd.conf
	$(INSTALL) -m 0644 signer/sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/itl-signd.conf
	$(INSTALL) -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 etc/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/itl-sign
	$(INSTALL) -m 0644 tools/itl-sign.bash-completion $(DESTDIR)$(BASHCOMPDIR)/itl-sign
	@# An existing config is the admin's: never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/itl-sign/itl-signd.yaml ] || \
		$(INSTALL) -m 0644 etc/itl-signd.yaml.example $(DESTDIR)$(SYSCONFDIR)/itl-sign/itl-signd.yaml

# Removes what install put there; a config that was changed stays (and says so), as do the
# PIN, the state and the audit log.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	if cmp -s etc/itl-signd.yaml.example $(DESTDIR)$(SYSCONFDIR)/itl-sign/itl-signd.yaml; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/itl-sign/itl-signd.yaml; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/itl-sign/itl-signd.yaml ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/itl-sign/itl-signd.yaml (changed since install)"; fi
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/itl-sign $(DESTDIR)$(SYSCONFDIR)/logrotate.d 2>/dev/null

# The Debian package, built in a copy of the tree (debian/rules clean would remove build/).
deb:
	@tests/package/test_deb.sh --build-only

# Builds the package, installs it on this machine, runs the service from it once, purges it.
deb-check:
	@tests/package/test_deb.sh

# Only the build and runtime packages, only the two programs: no test or sanitizer tooling.
demo:
	@tools/install-deps.sh --demo
	@$(MAKE) --no-print-directory bins
	@BUILD=$(BUILD) tools/demo.sh

# The README's test command: everything, then everything again under the sanitizers.
check: deps
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory asan

test: all
	@BUILD=$(BUILD) tests/run-all.sh

unit: all
	@BUILD=$(BUILD) tests/run-all.sh unit

integration: all
	@BUILD=$(BUILD) tests/run-all.sh integration

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

valgrind: all
	@BUILD=$(BUILD) tests/run-all.sh valgrind

fuzz:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} tests/fuzz/run.sh

# CI's bounded run: FUZZ_SECONDS times 3 (the targets it was sized for) shared by all targets.
fuzz-smoke:
	@FUZZ_TOTAL_SECONDS=$$((3 * $${FUZZ_SECONDS:-20})) tests/fuzz/run.sh

# Only what the benchmark runs: a test that does not compile must not block it.
bench: deps
	@$(MAKE) --no-print-directory BUILD=build-bench OPT="-O2 -g" \
		build-bench/itl-sign build-bench/itl-signd build-bench/tests/libfaultp11.so \
		$(patsubst $(BUILD)/%,build-bench/%,$(BENCH_BINS))
	@BUILD=build-bench bench/run.sh $(BENCH_ARGS)
	@BUILD=build-bench bench/fleet.sh

stress: all
	@BUILD=$(BUILD) STRESS=1 tests/run-all.sh integration

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-bench build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
