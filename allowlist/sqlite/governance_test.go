package sqlite

import (
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

const days = 24 * time.Hour

// openShared opens n handles on one database file, as n registry
// processes sharing it would, all on clock.
func openShared(t *testing.T, n int, clock *testClock, p allowlist.Policy) []*DB {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "registry.db")
	var out []*DB
	for range n {
		db, err := Open(path, Options{Quorum: 2, Key: key, Now: clock.Now, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out = append(out, db)
	}
	return out
}

func proposeWiki(t *testing.T, db *DB) {
	t.Helper()
	must[allowlist.Site](t)(db.CreateSite(ctx, owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "Ops"}}))
}

// tick runs every process's timers concurrently, as the runners would.
func tick(t *testing.T, dbs []*DB) int {
	t.Helper()
	var ran atomic.Int64
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.Schedule(ctx); err != nil {
				t.Error(err)
			}
			n, err := db.RunDueJobs(ctx)
			if err != nil {
				t.Error(err)
			}
			ran.Add(int64(n))
		}()
	}
	wg.Wait()
	return int(ran.Load())
}

func TestLazyConsensusRunsOnceAcrossProcesses(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	dbs := openShared(t, 3, clock, allowlist.Policy{ConsensusSponsors: 1, ConsensusAfter: 14 * days})
	seed(t, dbs[0], "dept-a", "dept-b")
	proposeWiki(t, dbs[0])
	must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", ""))
	if n := tick(t, dbs); n != 0 {
		t.Fatalf("ran %d jobs before the time", n)
	}
	clock.Add(13 * days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 0 {
		t.Fatalf("ran %d jobs after 13 days", n)
	}
	clock.Add(1*days + time.Second)
	if n := tick(t, dbs); n != 1 {
		t.Fatalf("three processes ran the consensus %d times, want once", n)
	}
	if got := version(t, dbs[1], "common"); got != 1 {
		t.Fatalf("common at version %d, want 1", got)
	}
	audit := must[[]allowlist.AuditEntry](t)(dbs[2].FindAudit(ctx, 0, 1000))
	found := 0
	for _, e := range audit {
		if e.Action == "site.consensus" && e.Actor == "registry:governance" {
			found++
			if want := `"rule":"lazy-consensus"`; !strings.Contains(e.Detail, want) {
				t.Errorf("audit detail %s lacks %s", e.Detail, want)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d consensus audit entries, want 1", found)
	}
	// Restarted processes find the job done and do nothing again.
	clock.Add(days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 1 {
		t.Fatalf("ran %d jobs again", n)
	}
	// A late objection takes it off again.
	must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "object", "no"))
	if got := version(t, dbs[0], "common"); got != 2 {
		t.Fatalf("common at %d after an objection, want 2", got)
	}
}

func TestLazyConsensusObjectionStopsClock(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	dbs := openShared(t, 1, clock, allowlist.Policy{ConsensusSponsors: 1, ConsensusAfter: 14 * days})
	seed(t, dbs[0], "dept-a", "dept-b")
	proposeWiki(t, dbs[0])
	must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", ""))
	tick(t, dbs) // stores the due time
	clock.Add(3 * days)
	must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "object", "data abroad"))
	clock.Add(20 * days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 0 {
		t.Fatalf("consensus despite an objection: %d jobs", n)
	}
	// Withdrawing the objection (day 23) starts the clock again: not at
	// once, though the approval is 23 days old, but 14 days later.
	must[allowlist.Site](t)(dbs[0].DeleteSignoff(ctx, owner("dept-b"), "wiki", "dept-b"))
	clock.Add(13 * days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 0 {
		t.Fatalf("consensus %d jobs 13 days after the withdrawal", n)
	}
	clock.Add(days + time.Second)
	if n := tick(t, dbs); n != 1 || version(t, dbs[0], "common") != 1 {
		t.Fatalf("no consensus 14 days after the withdrawal: %d jobs", n)
	}
}

func TestApprovalExpiryWarnsThenRemoves(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	dbs := openShared(t, 2, clock, allowlist.Policy{ApprovalMaxAge: 365 * days, ApprovalWarning: 30 * days})
	db := dbs[0]
	seed(t, db, "dept-a", "dept-b", "dept-c")
	proposeWiki(t, db)
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", ""))
	clock.Add(100 * days)
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-b"), "wiki", "dept-b", "approve", ""))
	if got := version(t, db, "common"); got != 1 {
		t.Fatalf("common at %d, want 1", got)
	}
	if _, err := db.EnqueueNotifications(ctx, allowlist.NotifyOptions{}); err != nil { // start the cursor
		t.Fatal(err)
	}
	must[allowlist.Webhook](t)(func() (allowlist.Webhook, error) {
		w, _, err := db.SetWebhook(ctx, owner("dept-c"), "dept-c", "http://127.0.0.1:1/hook")
		return w, err
	}())
	// Day 335 after dept-a's approval: warned, nothing removed.
	clock.Add(235*days + time.Second)
	if n := tick(t, dbs); n != 1 {
		t.Fatalf("%d jobs at the warning, want 1 (the warning)", n)
	}
	if n := must[int](t)(db.EnqueueNotifications(ctx, allowlist.NotifyOptions{})); n != 1 {
		t.Fatalf("%d deliveries queued, want 1 (dept-c hears that the site may leave)", n)
	}
	ds := must[[]allowlist.Delivery](t)(db.FindDeliveries(ctx, "dept-c", 10))
	if len(ds) != 1 || ds[0].Event != allowlist.EventSiteLeaving {
		t.Fatalf("deliveries %+v", ds)
	}
	// Day 365: dept-a's approval expires; the site falls below quorum and
	// leaves common in a new version.
	clock.Add(30 * days)
	if n := tick(t, dbs); n != 1 {
		t.Fatalf("%d jobs at expiry, want 1", n)
	}
	if got := version(t, db, "common"); got != 2 {
		t.Fatalf("common at %d after expiry, want 2", got)
	}
	ex := must[[]allowlist.Signoff](t)(db.FindExpiredSignoffs(ctx, "wiki"))
	if len(ex) != 1 || ex[0].Department != "dept-a" {
		t.Fatalf("expired %+v", ex)
	}
	// dept-b renews (at day 265 of its approval): its clock restarts.
	must[allowlist.Site](t)(db.RenewSignoff(ctx, owner("dept-b"), "wiki", "dept-b"))
	clock.Add(200 * days)
	if n := tick(t, dbs); n != 0 {
		t.Fatalf("%d jobs after renewal, want 0", n)
	}
	// Approving again clears the expired record.
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", ""))
	if ex := must[[]allowlist.Signoff](t)(db.FindExpiredSignoffs(ctx, "wiki")); len(ex) != 0 {
		t.Fatalf("expired after re-approval: %+v", ex)
	}
	if _, err := db.RenewSignoff(ctx, owner("dept-c"), "wiki", "dept-c"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("renewing nothing: %v", err)
	}
}

func TestRequestTracking(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	dbs := openShared(t, 1, clock, allowlist.Policy{DecisionSLA: 5 * days})
	db := dbs[0]
	seed(t, db, "dept-a", "dept-b")
	var refs []string
	for _, tool := range []string{"Wiki", "wiki", "Other"} {
		r := must[allowlist.Request](t)(db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: tool, URL: "https://" + map[bool]string{true: "wiki", false: "other"}[tool != "Other"] + ".example.org/x",
			Reason: "work", Department: "dept-a", Email: "me@example.org"}))
		if len(r.Reference) < 20 || r.Status != allowlist.RequestReceived {
			t.Fatalf("request %+v", r)
		}
		refs = append(refs, r.Reference)
	}
	got := must[allowlist.Request](t)(db.FindRequestByReference(ctx, refs[0]))
	if got.Email != "" || got.Tool != "Wiki" {
		t.Fatalf("by reference %+v", got)
	}
	if _, err := db.FindRequestByReference(ctx, refs[0][:len(refs[0])-1]+"x"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("a guessed reference: %v", err)
	}
	groups := must[[]allowlist.RequestGroup](t)(db.FindRequestGroups(ctx, "dept-a"))
	if len(groups) != 2 || groups[0].Key != "wiki.example.org" || groups[0].Count != 2 {
		t.Fatalf("groups %+v", groups)
	}
	clock.Add(6 * days)
	q := must[[]allowlist.QueueItem](t)(db.Queue(ctx, "dept-a", clock.Now()))
	if len(q) != 3 || !q[0].Overdue {
		t.Fatalf("queue %+v", q)
	}
	if _, err := db.AnswerRequest(ctx, owner("dept-b"), got.ID, allowlist.RequestAnswer{Status: "declined", Answer: "no"}); allowlist.ErrorCode(err) != allowlist.EFORBIDDEN {
		t.Fatalf("another department's owner answered: %v", err)
	}
	proposeWiki(t, db)
	a := must[allowlist.Request](t)(db.AnswerRequest(ctx, owner("dept-a"), got.ID, allowlist.RequestAnswer{Site: "wiki", Answer: "proposed it", Group: true}))
	if a.Status != allowlist.RequestInReview || a.Site != "wiki" {
		t.Fatalf("linked %+v", a)
	}
	if n := must[int](t)(db.SettleRequests(ctx)); n != 0 {
		t.Fatalf("settled %d before the site was listed", n)
	}
	must[allowlist.Site](t)(db.SetSignoff(ctx, owner("dept-a"), "wiki", "dept-a", "approve", ""))
	if n := must[int](t)(db.SettleRequests(ctx)); n != 2 {
		t.Fatalf("settled %d, want the 2 grouped requests", n)
	}
	for _, ref := range refs[:2] {
		if r := must[allowlist.Request](t)(db.FindRequestByReference(ctx, ref)); r.Status != allowlist.RequestAllowed {
			t.Fatalf("request %+v", r)
		}
	}
	if r := must[allowlist.Request](t)(db.FindRequestByReference(ctx, refs[2])); r.Status != allowlist.RequestReceived {
		t.Fatalf("ungrouped request %+v", r)
	}
}
