# Sensorium. `make demo` runs the whole thing on this machine; `make test` runs
# every test (CI runs exactly that, through .ci/run).

GO       ?= go
FUZZTIME ?= 60s
# Long-running targets keep the race detector for tests, where it earns its cost.
TESTFLAGS ?= -race -timeout 20m

.PHONY: all build demo cluster test vet bench fuzz soak clean

all: build

build:
	$(GO) build -o bin/sensorium ./cmd/sensorium

demo:
	$(GO) run ./cmd/sensorium demo

# Three nodes as three processes; one is SIGKILLed and restarted while a pump
# streams, and every node must then hold every PERSISTED fragment.
cluster:
	$(GO) run ./cmd/sensorium demo --nodes 3

# Most cluster tests run without the race detector: with it, three or five
# nodes' JetStream on 2 cores take minutes; the cluster's code paths are
# raced by the in-process tests that stay in the first run (reads through
# other nodes, the external-NATS cluster) and by the package's unit tests.
CLUSTER_HEAVY = ^Test(Cluster(SurvivesKills|Partition|Placement|Catalog|NoPersistedWithoutQuorum)|SingleNodeBecomesFirstNode)$$
# The power-cut loop runs without the race detector too: under it the
# server falls behind 2 producers and the loop measures the race detector;
# faultfs and the store are raced by their own packages' tests.
NO_RACE = $(CLUSTER_HEAVY)|^TestPowerCutsLoseNothingPersisted$$

test: vet
	bash scripts/install-test-deps.sh
	bash scripts/install-browser-deps.sh
	$(GO) test $(TESTFLAGS) -skip '$(NO_RACE)' ./...
	$(GO) test -count=1 -timeout 20m -run '$(NO_RACE)' ./internal/service/server
	$(GO) test -count=1 ./codecs
	cd compat && GO=$(GO) $(GO) test $(TESTFLAGS) ./...
	GO=$(GO) bash scripts/test-fma.sh

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd compat && $(GO) vet ./...

bench:
	bash scripts/install-bench-deps.sh
	$(GO) run ./cmd/sensorium-bench

# SOAK_KILLS SIGKILLs of the server while 3 producers stream into it; prints
# acked, found, lost, duplicated, corrupt. 200 for the release check.
# POWER_CUTS power cuts under the whole server (its store on the strict
# faultfs) while 2 producers stream; make test runs 10.
SOAK_KILLS ?= 50
CLUSTER_KILLS ?= 30
POWER_CUTS ?= 200
# REPLICATE_ROUNDS rounds of kill -9 of the edge, the centre and the
# replicator in turn while a stream is copied (three kills a round).
REPLICATE_ROUNDS ?= 50
soak:
	SENSORIUM_POWER_CUTS=$(POWER_CUTS) $(GO) test ./internal/service/server -run '^TestPowerCutsLoseNothingPersisted$$' -count=1 -v -timeout 90m
	SENSORIUM_SOAK_KILLS=$(SOAK_KILLS) $(GO) test ./internal/service/server -run '^TestSoak$$' -count=1 -v -timeout 90m
	SENSORIUM_CLUSTER_KILLS=$(CLUSTER_KILLS) $(GO) test ./internal/service/server -run '^TestClusterSurvivesKills$$' -count=1 -v -timeout 90m
	SENSORIUM_REPLICATE_ROUNDS=$(REPLICATE_ROUNDS) $(GO) test ./cmd/sensorium -run '^TestReplicateSurvivesKill9$$' -count=1 -v -timeout 90m

fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin data data-demo
