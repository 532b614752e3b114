package journal

// Commit delay (Options.SyncDelay): fewer syncs at moderate load.
//
// With SyncAlways the writer syncs whatever was appended as soon as it is
// free. At a moderate, steady load that is a sync for nearly every
// record: paced at 2,000 messages/s through `chute serve` (a publish, a
// delivery and an ack each), 1,800–2,400 fdatasyncs a second (runs
// differ), in one run the disk busy syncing 83 % of the time. On this project's machine (a virtual
// machine), a sync is not only the disk's time: the host's work for it
// counts against the machine's CPU allowance, and while a process keeps
// the CPUs busy beside a stream of syncs every process on the machine is
// stopped for 4–20 ms several times a second (docs/benchmarks.md, "the
// machine's stalls"; seen as steal time, 6–9 % of the CPUs during that
// run). Those stops were the whole tail of end-to-end latency.
//
// So, when the writer is idle and an append wakes it less than SyncDelay
// after its last sync ended, it waits until SyncDelay has passed since
// then, and the appends of that span share one sync. The records still
// complete in order and only once synced: nothing about durability
// changes, only how many appends one fdatasync covers. A caller that
// needs its appends only written (a delivery, Hurry) writes them itself
// during the wait, as it would during a sync. It never delays a
// writer that goes from one sync straight to the next batch (under load
// each batch already holds what came during the sync before), nor the
// first append after a quiet spell, so the wait costs at most SyncDelay,
// and only to appends that come close behind a sync.
//
// Measured at 2,000/s through `chute serve` (chute bench run --serve
// --rate 2000, and the comparison's W3), on this machine where a Go timer
// shorter than a millisecond fires after about 1 ms: syncs 1,800–1,900 →
// 1,300–1,400 a second (W3, three pairs; about 300 waits a second), steal
// time 7–9 % → 0.2–2 %, W3's end-to-end p99 8–11 ms → 2–7 ms and W5's
// lateness p99 7–11 ms → 3 ms, p50 unchanged (0.4–0.5 ms). See docs/benchmarks.md ("Fifth session") for the runs.

// A delay pays only when others append during it. One caller that
// appends, waits for its sync and appends again (a publisher that waits
// for each confirm) gains nothing and would pay the delay every time
// (about 1 ms here, on a confirm that takes 0.65 ms at p50 without: an
// estimate, not measured; with the rule below it loses 2–9 % of its
// rate, measured). So after commitdelay.FruitlessLimit delays in a row during which
// nothing was appended the writer stops delaying, and tries one delay
// again every commitdelay.ProbeEvery wakes to see whether others append by then.
//
// An append that was hurried during the delay counts: without the delay
// its record would have had a sync of its own. That is what a consumer
// that takes one message at a time and waits for each ack pays for: its
// next delivery's record comes during its ack's delay, so the ack waits
// out the delay — up to about 1 ms more per ack on this machine (W5's
// priority check, 1,000 messages at prefetch 1, ran 0.4–0.6 s longer).
// A Runner does not wait for its acks, nor does a Consumer acking from
// another goroutine; --sync-delay 0 turns the delay off.
// The rule (when to wait, and the fruitless count) is commitdelay.Rule,
// which a cluster node's loop shares.

// delaySync is the commit delay: called by the writer, woken idle, before
// it takes the appends. It waits until SyncDelay after the last sync
// ended, if that was less than SyncDelay ago and delays have been paying
// (above), or until Close.
func (j *Journal) delaySync(w *writer) {
	if j.opts.Sync != SyncAlways {
		return
	}
	wait := w.delay.Wait(j.opts.Clock.Now())
	if wait <= 0 {
		return
	}
	j.stats.delayed.Add(1)
	appended := j.stats.records.Load()
	defer func() { w.delay.Waited(j.stats.records.Load() != appended) }()
	// A caller that needs its appends only written (a delivery: Hurry)
	// must not wait out the delay: while it runs, appends to the tail
	// segment may be hurried, as during a sync, and the writer syncs them
	// with what it takes after the delay. Everything before them is
	// written and synced already (the writer is idle).
	j.mu.Lock()
	j.letHurryLocked(j.tail)
	j.mu.Unlock()
	t := j.opts.Clock.NewTimer(wait)
	select {
	case <-t.C():
	case <-j.quit:
	}
	t.Stop()
	j.mu.Lock()
	j.syncing = nil
	j.mu.Unlock()
}
