package storetest

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
)

// The governance part of the suite: timers claimed once by several
// instances on one database, lazy consensus, approval expiry, staff
// requests and their decision SLA, the notification outbox and its
// delivery log, and zone-transfer (TSIG) keys.

// runGovernance runs the governance cases.
func runGovernance(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"LazyConsensusRunsOnce", testLazyConsensusRunsOnce},
		{"LazyConsensusObjectionStopsClock", testLazyConsensusObjectionStopsClock},
		{"ApprovalExpiry", testApprovalExpiry},
		{"Requests", testRequests},
		{"Deliveries", testDeliveries},
		{"TSIGKeys", testTSIGKeys},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// Clock is a clock tests move by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed date.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Add moves the clock on.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

const days = 24 * time.Hour

// openShared opens n stores on one new database, as n registry
// instances sharing it would, all on clock with policy p and one key.
func (b Backend) openShared(t *testing.T, n int, clock *Clock, p allowlist.Policy) []Store {
	t.Helper()
	name, key := b.New(t), newKey()
	var out []Store
	for range n {
		s, err := b.Open(name, Options{Quorum: 2, Key: key, Now: clock.Now, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

func proposeWiki(t *testing.T, db Store) {
	t.Helper()
	Must[allowlist.Site](t)(db.CreateSite(ctx, Owner("dept-a"), allowlist.SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki",
		Domains: []string{"wiki.example.org"}, Owner: allowlist.Owner{Name: "Ops"}}))
}

// tick runs every instance's timers at once, as their runners would.
func tick(t *testing.T, dbs []Store) int {
	t.Helper()
	var ran atomic.Int64
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			if _, err := db.Schedule(ctx); err != nil {
				t.Error(err)
			}
			n, err := db.RunDueJobs(ctx)
			if err != nil {
				t.Error(err)
			}
			ran.Add(int64(n))
		})
	}
	wg.Wait()
	return int(ran.Load())
}

// testLazyConsensusRunsOnce: three instances tick together; the lazy
// consensus runs once, is audited once, and a late objection undoes it.
func testLazyConsensusRunsOnce(t *testing.T, b Backend) {
	clock := NewClock()
	dbs := b.openShared(t, 3, clock, allowlist.Policy{ConsensusSponsors: 1, ConsensusAfter: 14 * days})
	Seed(t, dbs[0], "dept-a", "dept-b")
	proposeWiki(t, dbs[0])
	Must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	if n := tick(t, dbs); n != 0 {
		t.Fatalf("ran %d jobs before the time", n)
	}
	clock.Add(13 * days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 0 {
		t.Fatalf("ran %d jobs after 13 days", n)
	}
	clock.Add(1*days + time.Second)
	if n := tick(t, dbs); n != 1 {
		t.Fatalf("three instances ran the consensus %d times, want once", n)
	}
	if got := version(t, dbs[1], "common"); got != 1 {
		t.Fatalf("common at version %d, want 1", got)
	}
	audit := Must[[]allowlist.AuditEntry](t)(dbs[2].FindAudit(ctx, 0, 1000))
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
	// Later ticks find the job done and do nothing again.
	clock.Add(days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 1 {
		t.Fatalf("ran %d jobs again", n)
	}
	// A late objection takes it off again.
	Must[allowlist.Site](t)(dbs[1].SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "object", "no"))
	if got := version(t, dbs[0], "common"); got != 2 {
		t.Fatalf("common at %d after an objection, want 2", got)
	}
	if n, ok := Must2[int64, bool](t)(dbs[0].VerifyAudit(ctx)); !ok {
		t.Fatalf("audit chain broken at %d", n)
	}
}

// testLazyConsensusObjectionStopsClock: an objection stops the clock;
// withdrawing it starts a new one.
func testLazyConsensusObjectionStopsClock(t *testing.T, b Backend) {
	clock := NewClock()
	dbs := b.openShared(t, 1, clock, allowlist.Policy{ConsensusSponsors: 1, ConsensusAfter: 14 * days})
	Seed(t, dbs[0], "dept-a", "dept-b")
	proposeWiki(t, dbs[0])
	Must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	tick(t, dbs) // stores the due time
	clock.Add(3 * days)
	Must[allowlist.Site](t)(dbs[0].SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "object", "data abroad"))
	clock.Add(20 * days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 0 {
		t.Fatalf("consensus despite an objection: %d jobs", n)
	}
	// Withdrawing the objection (day 23) starts the clock again: not at
	// once, though the approval is 23 days old, but 14 days later.
	Must[allowlist.Site](t)(dbs[0].DeleteSignoff(ctx, Owner("dept-b"), "wiki", "dept-b"))
	clock.Add(13 * days)
	if n := tick(t, dbs); n != 0 || version(t, dbs[0], "common") != 0 {
		t.Fatalf("consensus %d jobs 13 days after the withdrawal", n)
	}
	clock.Add(days + time.Second)
	if n := tick(t, dbs); n != 1 || version(t, dbs[0], "common") != 1 {
		t.Fatalf("no consensus 14 days after the withdrawal: %d jobs", n)
	}
}

// testApprovalExpiry: an approval is warned about, then expires and
// takes the site below quorum; renewing restarts its clock.
func testApprovalExpiry(t *testing.T, b Backend) {
	clock := NewClock()
	dbs := b.openShared(t, 2, clock, allowlist.Policy{ApprovalMaxAge: 365 * days, ApprovalWarning: 30 * days})
	db := dbs[0]
	Seed(t, db, "dept-a", "dept-b", "dept-c")
	proposeWiki(t, db)
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	clock.Add(100 * days)
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-b"), "wiki", "dept-b", "approve", ""))
	if got := version(t, db, "common"); got != 1 {
		t.Fatalf("common at %d, want 1", got)
	}
	if _, err := db.EnqueueNotifications(ctx, allowlist.NotifyOptions{}); err != nil { // start the cursor
		t.Fatal(err)
	}
	Must[allowlist.Webhook](t)(func() (allowlist.Webhook, error) {
		w, _, err := db.SetWebhook(ctx, Owner("dept-c"), "dept-c", "http://127.0.0.1:1/hook")
		return w, err
	}())
	// Day 335 after dept-a's approval: warned, nothing removed.
	clock.Add(235*days + time.Second)
	if n := tick(t, dbs); n != 1 {
		t.Fatalf("%d jobs at the warning, want 1 (the warning)", n)
	}
	if n := Must[int](t)(dbs[1].EnqueueNotifications(ctx, allowlist.NotifyOptions{})); n != 1 {
		t.Fatalf("%d deliveries queued, want 1 (dept-c hears that the site may leave)", n)
	}
	ds := Must[[]allowlist.Delivery](t)(db.FindDeliveries(ctx, "dept-c", 10))
	if len(ds) != 1 || ds[0].Event != allowlist.EventSiteLeaving {
		t.Fatalf("deliveries %+v", ds)
	}
	clocks := Must[map[string]allowlist.ApprovalClock](t)(db.FindApprovalClocks(ctx, "wiki"))
	if len(clocks) != 2 {
		t.Fatalf("approval clocks %+v, want dept-a's and dept-b's", clocks)
	}
	// Day 365: dept-a's approval expires; the site falls below quorum and
	// leaves common in a new version.
	clock.Add(30 * days)
	if n := tick(t, dbs); n != 1 {
		t.Fatalf("%d jobs at expiry, want 1", n)
	}
	if got := version(t, dbs[1], "common"); got != 2 {
		t.Fatalf("common at %d after expiry, want 2", got)
	}
	ex := Must[[]allowlist.Signoff](t)(dbs[1].FindExpiredSignoffs(ctx, "wiki"))
	if len(ex) != 1 || ex[0].Department != "dept-a" {
		t.Fatalf("expired %+v", ex)
	}
	// dept-b renews (at day 265 of its approval): its clock restarts.
	Must[allowlist.Site](t)(db.RenewSignoff(ctx, Owner("dept-b"), "wiki", "dept-b"))
	clock.Add(200 * days)
	if n := tick(t, dbs); n != 0 {
		t.Fatalf("%d jobs after renewal, want 0", n)
	}
	// Approving again clears the expired record.
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	if ex := Must[[]allowlist.Signoff](t)(db.FindExpiredSignoffs(ctx, "wiki")); len(ex) != 0 {
		t.Fatalf("expired after re-approval: %+v", ex)
	}
	if _, err := db.RenewSignoff(ctx, Owner("dept-c"), "wiki", "dept-c"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("renewing nothing: %v", err)
	}
}

// testRequests: staff requests get an unguessable reference, are grouped,
// show as overdue past the decision SLA, are answered only by their
// department, and settle when the linked site is listed.
func testRequests(t *testing.T, b Backend) {
	clock := NewClock()
	dbs := b.openShared(t, 2, clock, allowlist.Policy{DecisionSLA: 5 * days})
	db := dbs[0]
	Seed(t, db, "dept-a", "dept-b")
	var refs []string
	for _, tool := range []string{"Wiki", "wiki", "Other"} {
		host := "wiki"
		if tool == "Other" {
			host = "other"
		}
		r := Must[allowlist.Request](t)(db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: tool, URL: "https://" + host + ".example.org/x",
			Reason: "work", Department: "dept-a", Email: "me@example.org"}))
		if len(r.Reference) < 20 || r.Status != allowlist.RequestReceived {
			t.Fatalf("request %+v", r)
		}
		refs = append(refs, r.Reference)
	}
	got := Must[allowlist.Request](t)(dbs[1].FindRequestByReference(ctx, refs[0]))
	if got.Email != "" || got.Tool != "Wiki" {
		t.Fatalf("by reference %+v", got)
	}
	if _, err := db.FindRequestByReference(ctx, refs[0][:len(refs[0])-1]+"x"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("a guessed reference: %v", err)
	}
	if full := Must[allowlist.Request](t)(db.FindRequest(ctx, got.ID)); full.Email != "me@example.org" {
		t.Fatalf("by id %+v", full)
	}
	groups := Must[[]allowlist.RequestGroup](t)(db.FindRequestGroups(ctx, "dept-a"))
	if len(groups) != 2 || groups[0].Key != "wiki.example.org" || groups[0].Count != 2 {
		t.Fatalf("groups %+v", groups)
	}
	if q := Must[[]allowlist.QueueItem](t)(db.Queue(ctx, "dept-a", clock.Now().Add(4*days))); len(q) != 3 || q[0].Overdue {
		t.Fatalf("queue within the SLA %+v", q)
	}
	clock.Add(6 * days)
	q := Must[[]allowlist.QueueItem](t)(dbs[1].Queue(ctx, "dept-a", clock.Now()))
	if len(q) != 3 || !q[0].Overdue {
		t.Fatalf("queue past the SLA %+v", q)
	}
	if q := Must[[]allowlist.QueueItem](t)(db.Queue(ctx, "dept-b", clock.Now())); len(q) != 0 {
		t.Fatalf("dept-b's queue holds dept-a's requests: %+v", q)
	}
	if _, err := db.AnswerRequest(ctx, Owner("dept-b"), got.ID, allowlist.RequestAnswer{Status: "declined", Answer: "no"}); allowlist.ErrorCode(err) != allowlist.EFORBIDDEN {
		t.Fatalf("another department's owner answered: %v", err)
	}
	proposeWiki(t, db)
	a := Must[allowlist.Request](t)(dbs[1].AnswerRequest(ctx, Owner("dept-a"), got.ID, allowlist.RequestAnswer{Site: "wiki", Answer: "proposed it", Group: true}))
	if a.Status != allowlist.RequestInReview || a.Site != "wiki" {
		t.Fatalf("linked %+v", a)
	}
	if n := Must[int](t)(db.SettleRequests(ctx)); n != 0 {
		t.Fatalf("settled %d before the site was listed", n)
	}
	Must[allowlist.Site](t)(db.SetSignoff(ctx, Owner("dept-a"), "wiki", "dept-a", "approve", ""))
	if n := Must[int](t)(dbs[1].SettleRequests(ctx)); n != 2 {
		t.Fatalf("settled %d, want the 2 grouped requests", n)
	}
	if n := Must[int](t)(db.SettleRequests(ctx)); n != 0 {
		t.Fatalf("settled %d again", n)
	}
	for _, ref := range refs[:2] {
		if r := Must[allowlist.Request](t)(db.FindRequestByReference(ctx, ref)); r.Status != allowlist.RequestAllowed {
			t.Fatalf("request %+v", r)
		}
	}
	if r := Must[allowlist.Request](t)(db.FindRequestByReference(ctx, refs[2])); r.Status != allowlist.RequestReceived {
		t.Fatalf("ungrouped request %+v", r)
	}
}

// testDeliveries: the notification outbox on two instances. An event is
// queued once however many enqueue it; a delivery is claimed by one
// instance; a failed attempt is retried after the backoff and a run of
// failures ends it; the delivery log lists a department's newest first.
func testDeliveries(t *testing.T, b Backend) {
	clock := NewClock()
	dbs := b.openShared(t, 2, clock, allowlist.Policy{})
	db := dbs[0]
	Seed(t, db, "dept-a", "dept-b")
	_, secret := Must2[allowlist.Webhook, string](t)(db.SetWebhook(ctx, Owner("dept-a"), "dept-a", "https://hooks.example.org/a"))
	if len(secret) < 32 {
		t.Fatalf("webhook secret %q", secret)
	}
	if w := Must[allowlist.Webhook](t)(dbs[1].FindWebhook(ctx, "dept-a")); w.URL != "https://hooks.example.org/a" {
		t.Fatalf("webhook %+v", w)
	}
	for _, s := range dbs { // start the cursor
		Must[int](t)(s.EnqueueNotifications(ctx, allowlist.NotifyOptions{}))
	}
	request := func() {
		Must[allowlist.Request](t)(db.CreateRequest(ctx, allowlist.Actor{}, allowlist.Request{Tool: "Miro", URL: "https://miro.example.org",
			Reason: "workshops", Department: "dept-a", Email: "staff@example.org"}))
	}
	// Both instances enqueue and claim at once.
	both := func(fn func(Store) int) int {
		var n atomic.Int64
		var wg sync.WaitGroup
		for _, s := range dbs {
			wg.Go(func() { n.Add(int64(fn(s))) })
		}
		wg.Wait()
		return int(n.Load())
	}
	enqueue := func() int {
		return both(func(s Store) int { return Must[int](t)(s.EnqueueNotifications(ctx, allowlist.NotifyOptions{})) })
	}
	var claimed []allowlist.Claimed
	var mu sync.Mutex
	claim := func() int {
		claimed = nil
		return both(func(s Store) int {
			c := Must[[]allowlist.Claimed](t)(s.ClaimDeliveries(ctx, time.Minute, 10))
			mu.Lock()
			claimed = append(claimed, c...)
			mu.Unlock()
			return len(c)
		})
	}
	request()
	if n := enqueue(); n != 1 {
		t.Fatalf("two instances queued %d deliveries for one request, want 1", n)
	}
	if n := claim(); n != 1 {
		t.Fatalf("two instances claimed %d deliveries, want the one once", n)
	}
	c := claimed[0]
	if c.Event != allowlist.EventRequest || c.Channel != "webhook" || c.Target != "https://hooks.example.org/a" || c.Secret != secret || c.Attempts != 1 {
		t.Fatalf("claimed %+v", c)
	}
	if bytes.Contains(c.Payload, []byte("staff@example.org")) {
		t.Errorf("the payload carries the requester's e-mail: %s", c.Payload)
	}
	if n := claim(); n != 0 {
		t.Fatalf("claimed %d deliveries under a lease", n)
	}
	// A refusal: retried after the backoff, not before.
	if err := dbs[1].FinishDelivery(ctx, c.ID, "HTTP 503", 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	ds := Must[[]allowlist.Delivery](t)(db.FindDeliveries(ctx, "dept-a", 10))
	if len(ds) != 1 || ds[0].Status != "pending" || ds[0].Attempts != 1 || ds[0].LastError != "HTTP 503" || !ds[0].NextAt.After(clock.Now()) {
		t.Fatalf("after a refusal: %+v", ds)
	}
	if n := claim(); n != 0 {
		t.Fatalf("claimed %d deliveries before the backoff ended", n)
	}
	// The owners move their webhook meanwhile: the retry goes to the new
	// address, with the new secret, and the delivery log says where it went.
	_, secret = Must2[allowlist.Webhook, string](t)(db.SetWebhook(ctx, Owner("dept-a"), "dept-a", "https://hooks.example.org/moved"))
	clock.Add(61 * time.Second)
	if n := claim(); n != 1 || claimed[0].Attempts != 2 || claimed[0].Target != "https://hooks.example.org/moved" || claimed[0].Secret != secret {
		t.Fatalf("claimed %d (%+v) after the backoff, want the one, second attempt, to the moved webhook", n, claimed)
	}
	if err := db.FinishDelivery(ctx, claimed[0].ID, "", 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	ds = Must[[]allowlist.Delivery](t)(dbs[1].FindDeliveries(ctx, "dept-a", 10))
	if len(ds) != 1 || ds[0].Status != "delivered" || ds[0].Attempts != 2 || ds[0].LastError != "" || ds[0].DeliveredAt == nil || ds[0].Target != "https://hooks.example.org/moved" {
		t.Fatalf("after delivery: %+v", ds)
	}
	// A second event fails three times and is given up.
	request()
	if n := enqueue(); n != 1 {
		t.Fatalf("queued %d for the second request", n)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		if n := claim(); n != 1 || claimed[0].Attempts != attempt {
			t.Fatalf("attempt %d: claimed %d %+v", attempt, n, claimed)
		}
		if err := dbs[attempt%2].FinishDelivery(ctx, claimed[0].ID, "connection refused", 3, time.Minute); err != nil {
			t.Fatal(err)
		}
		clock.Add(24 * time.Hour)
	}
	if n := claim(); n != 0 {
		t.Fatalf("claimed %d after the last attempt", n)
	}
	ds = Must[[]allowlist.Delivery](t)(db.FindDeliveries(ctx, "dept-a", 10))
	if len(ds) != 2 || ds[0].Status != "failed" || ds[0].Attempts != 3 || ds[0].LastError != "connection refused" || ds[1].Status != "delivered" || ds[0].ID <= ds[1].ID {
		t.Fatalf("delivery log, newest first: %+v", ds)
	}
	if ds := Must[[]allowlist.Delivery](t)(db.FindDeliveries(ctx, "dept-b", 10)); len(ds) != 0 {
		t.Fatalf("dept-b, without a webhook, has deliveries %+v", ds)
	}
	if err := db.DeleteWebhook(ctx, Owner("dept-a"), "dept-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[1].FindWebhook(ctx, "dept-a"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("webhook after delete: %v", err)
	}
}

// testTSIGKeys: zone-transfer keys are made with a fresh secret shown
// once, listed without it, shared by every instance, refused for a name
// in use, a bad name or an unknown scope, and gone from the usable keys
// once revoked; refused transfers are audited.
func testTSIGKeys(t *testing.T, b Backend) {
	dbs := b.openShared(t, 2, NewClock(), allowlist.Policy{})
	db := dbs[0]
	Seed(t, db, "dept-a")
	k, secret := Must2[allowlist.TSIGKey, []byte](t)(db.CreateTSIGKey(ctx, allowlist.System, "xfr.dept-a.example.", []string{"dept-a"}))
	if k.ID == 0 || k.Name != "xfr.dept-a.example" || len(secret) != 32 || len(k.Scopes) != 1 || k.Scopes[0] != "dept-a" {
		t.Fatalf("key %+v secret %d bytes", k, len(secret))
	}
	all, secret2 := Must2[allowlist.TSIGKey, []byte](t)(dbs[1].CreateTSIGKey(ctx, allowlist.System, "xfr-all", nil))
	if bytes.Equal(secret, secret2) {
		t.Fatal("two keys with one secret")
	}
	for _, bad := range []struct {
		name   string
		scopes []string
		code   string
	}{
		{"xfr.dept-a.example", nil, allowlist.ECONFLICT},
		{"XFR..example", nil, allowlist.EINVALID},
		{"", nil, allowlist.EINVALID},
		{"xfr-nowhere", []string{"dept-z"}, allowlist.ENOTFOUND},
	} {
		if _, _, err := dbs[1].CreateTSIGKey(ctx, allowlist.System, bad.name, bad.scopes); allowlist.ErrorCode(err) != bad.code {
			t.Errorf("key %q scopes %v: %v, want %s", bad.name, bad.scopes, err, bad.code)
		}
	}
	keys := Must[[]allowlist.TSIGKey](t)(dbs[1].FindTSIGKeys(ctx))
	if len(keys) != 2 || keys[0].ID != k.ID || keys[1].ID != all.ID || keys[0].RevokedAt != nil || len(keys[1].Scopes) != 0 {
		t.Fatalf("keys %+v", keys)
	}
	secrets := Must[[]allowlist.TSIGSecret](t)(dbs[1].FindTSIGSecrets(ctx))
	if len(secrets) != 2 || secrets[0].Name != k.Name || !bytes.Equal(secrets[0].Secret, secret) || !secrets[0].Allows("dept-a") ||
		secrets[0].Allows("common") || !secrets[1].Allows("common") {
		t.Fatalf("secrets %+v", secrets)
	}
	if err := db.RevokeTSIGKey(ctx, allowlist.System, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := dbs[1].RevokeTSIGKey(ctx, allowlist.System, k.ID); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := db.RevokeTSIGKey(ctx, allowlist.System, 999999); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("revoking an unknown key: %v", err)
	}
	if s := Must[[]allowlist.TSIGSecret](t)(dbs[1].FindTSIGSecrets(ctx)); len(s) != 1 || s[0].Name != "xfr-all" {
		t.Fatalf("usable keys after the revocation %+v", s)
	}
	if keys := Must[[]allowlist.TSIGKey](t)(db.FindTSIGKeys(ctx)); len(keys) != 2 || keys[0].RevokedAt == nil {
		t.Fatalf("keys after the revocation %+v", keys)
	}
	if err := dbs[1].AuditTransferRefused(ctx, "xfr.dept-a.example", "127.0.0.1:5353", "dept-a", "key revoked"); err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range Must[[]allowlist.AuditEntry](t)(db.FindAudit(ctx, 0, 1000)) {
		actions[e.Action]++
		if strings.Contains(e.Detail, string(secret)) {
			t.Errorf("audit entry %d holds a secret", e.Seq)
		}
	}
	if actions["tsig.create"] != 2 || actions["tsig.revoke"] != 1 || actions["zone.transfer_refused"] != 1 {
		t.Fatalf("audit actions %v", actions)
	}
	if n, ok := Must2[int64, bool](t)(db.VerifyAudit(ctx)); !ok {
		t.Fatalf("audit chain broken at %d", n)
	}
}

// Must2 is Must for two values.
func Must2[A, B any](tb testing.TB) func(A, B, error) (A, B) {
	return func(a A, b B, err error) (A, B) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return a, b
	}
}
