package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestAddSensorNameConcurrentStartsKeepEveryName starts sensors with one
// key folder at once (a host's services started together, each sensor
// adding its --id to sensor.names): every name must be in the file, or
// the ingest trusting the folder fails all that a sensor whose name was
// lost signs.
func TestAddSensorNameConcurrentStartsKeepEveryName(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		key := filepath.Join(dir, sensorKeyFile)
		const n = 8
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				errs <- addSensorName(key, fmt.Sprintf("sensor-%d", i))
			}(i)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		names, err := readSensorNames(namesFor(key), []uint32{uint32(os.Getuid())})
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != n {
			t.Fatalf("round %d: %d sensors started, sensor.names holds %d: %q", round, n, len(names), names)
		}
	}
}
