# Benchmark programs, built with the extension's own flags: read after the
# top-level Makefile (make -f Makefile -f bench/bench.mk ...), so the floor
# is compiled exactly like the binary it is compared with.
#
#   $(BUILD)/bench/floor     the floor extension (bench/floor.c)
#   $(BUILD)/bench/loadgen   the telemetry load generator (bench/loadgen.c)
#   $(BUILD)/bench/ingest_micro  parse + trace + encode in one thread (profiling)
#   $(BUILD)/bench/export_cpu    exporter CPU per PutTraceSegments request
#
# BENCH_LDFLAGS adds link flags (-static when the measured binary is static).

BENCH_LDFLAGS ?=

.PHONY: bench-programs
bench-programs: $(BUILD)/bench/floor $(BUILD)/bench/loadgen $(BUILD)/bench/ingest_micro

# The pipeline thread's ingest work in one thread, for profilers (callgrind):
# linked with the extension's modules.
$(BUILD)/bench/ingest_micro: bench/ingest_micro.c bench/telemetry_body.h $(OBJ) extension/*.h | $(BUILD)/bench
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_BASE) -Iextension $< $(OBJ) $(LIBS) -o $@

# The exporter core driven on one thread against a local endpoint that
# answers at once: its CPU per request (make -f Makefile -f bench/bench.mk
# build/dev/bench/export_cpu && build/dev/bench/export_cpu 20000).
$(BUILD)/bench/export_cpu: bench/export_cpu.c $(OBJ) extension/*.h | $(BUILD)/bench
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_BASE) -Iextension $< $(OBJ) $(LIBS) -o $@

$(BUILD)/bench/%: bench/%.c bench/telemetry_body.h | $(BUILD)/bench
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_BASE) $(BENCH_LDFLAGS) $< -lpthread -o $@

$(BUILD)/bench:
	mkdir -p $@

# The floor built like the release binary (make release, after ./build.sh
# layer): same musl toolchain, flags, static link and strip.
.PHONY: release-floor
release-floor: $(RELEASE_DIR)/bench/floor
$(RELEASE_DIR)/bench/floor: bench/floor.c | $(RELEASE_DIR)/bench
	$(RELEASE_CC) $(RELEASE_CFLAGS) $(RELEASE_LDFLAGS) $< -lpthread -o $@.debug
	$(RELEASE_STRIP) --strip-all -o $@ $@.debug

$(RELEASE_DIR)/bench:
	mkdir -p $@
