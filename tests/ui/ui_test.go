package ui

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestLogin: the page asks for a token; a wrong one shows an error and
// leaves the page logged out; the right one logs in with an HttpOnly,
// SameSite=Strict session cookie, and the token never appears in a URL
// the page requested.
func TestLogin(t *testing.T) {
	e := newEnv(t, nil)
	br := newBrowser(t, e.base, testTimeout)
	br.allow("401") // the wrong token's refused login

	br.open("")
	br.do("wrong token",
		chromedp.WaitVisible(chromedp.CSS("form#login")),
		chromedp.SendKeys(chromedp.CSS("input#token"), "not-the-token\r"),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
		chromedp.WaitVisible(chromedp.CSS("form#login")),
	)
	if cs := br.cookies(); len(cs) != 0 {
		t.Errorf("after a wrong token the browser has cookies %v, want none", cookieNames(cs))
	}
	if in := eval[bool](br, `document.querySelector('tr[data-queue]') !== null`); in {
		t.Error("after a wrong token the page shows queue rows")
	}

	br.clear("input#token")
	br.do("right token", chromedp.SendKeys(chromedp.CSS("input#token"), adminToken+"\r"))
	waitFor[bool](br, "the feed to be live", `document.querySelector('#live[data-state=live]') !== null`,
		`(document.querySelector('#live')||{}).outerHTML`)
	waitFor[bool](br, "the login form to go", `(() => { const f = document.querySelector('form#login'); return !f || f.offsetParent === null })()`, "")

	var session bool
	for _, c := range br.cookies() {
		if c.Name != "chute_session" {
			continue
		}
		session = true
		if !c.HTTPOnly {
			t.Error("the chute_session cookie is not HttpOnly")
		}
		if string(c.SameSite) != "Strict" {
			t.Errorf("the chute_session cookie has SameSite=%q, want Strict", c.SameSite)
		}
		if c.Value == adminToken || strings.Contains(c.Value, adminToken) {
			t.Error("the session cookie holds the token itself")
		}
	}
	if !session {
		t.Fatal("no chute_session cookie after logging in")
	}
	if dc := eval[string](br, `document.cookie`); strings.Contains(dc, "chute_session") {
		t.Errorf("document.cookie shows the session: %q", dc)
	}
	// A reload stays logged in: the cookie, not the page's memory, holds
	// the session.
	br.open("")
	waitFor[bool](br, "the feed to be live after a reload", `document.querySelector('#live[data-state=live]') !== null`, "")
	reqs := br.requested()
	if !slices.ContainsFunc(reqs, func(u string) bool { return strings.HasSuffix(u, "/ui/login") }) {
		t.Fatalf("no request to /ui/login recorded (the recording is broken): %v", reqs)
	}
	if u, bad := tokenInURL(reqs, adminToken); bad {
		t.Errorf("the page requested a URL with the token in it: %s", u)
	}
}

// TestFeedStaysOpen: the page's one feed stays open for longer than the
// server's AuthTimeout (2 s in these tests): a feed authenticated by its
// cookie must count as an authenticated connection, or the server cuts
// it and the page has to reconnect.
func TestFeedStaysOpen(t *testing.T) {
	e := newEnv(t, nil)
	br := newBrowser(t, e.base, testTimeout)
	br.login(adminToken)
	first := br.feedEvents()
	// The hub sends an event every second while a feed is open: 4 more
	// take longer than the AuthTimeout.
	waitFor[bool](br, "4 more feed events", fmt.Sprintf("window.__chute.events >= %d", first+4), "String(window.__chute.events)")
	var feeds []string
	for _, u := range br.requested() {
		if strings.Contains(u, "/ui/api/feed") {
			feeds = append(feeds, u)
		}
	}
	if len(feeds) != 1 {
		t.Errorf("the page opened the feed %d times, want once: %v", len(feeds), feeds)
	}
	if st := eval[string](br, `document.querySelector('#live').dataset.state`); st != "live" {
		t.Errorf("#live is %q, want live", st)
	}
}

func cookieNames(cs []*network.Cookie) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// TestOverview: a queue appears in the overview (found with the filter)
// with its ready count, which follows publishes without a reload.
func TestOverview(t *testing.T) {
	e := newEnv(t, nil)
	e.createQueue(t, "ui-orders", chute.QueueConfig{})
	e.createQueue(t, "ui-other", chute.QueueConfig{})
	e.publish(t, "ui-orders", 3, "x")
	br := newBrowser(t, e.base, testTimeout)
	br.login(adminToken)

	br.do("filter", chromedp.SendKeys(chromedp.CSS("input#filter"), "orders"))
	cell := `document.querySelector('tr[data-queue="ui-orders"] td[data-col=r]')`
	waitFor[bool](br, "ui-orders with 3 ready", cell+`?.textContent.trim() === "3"`, cell+`?.textContent ?? "no row"`)
	waitFor[bool](br, "the filter to hide ui-other",
		`(() => { const r = document.querySelector('tr[data-queue="ui-other"]'); return !r || r.offsetParent === null })()`, "")

	eval[chromedp.Void](br, `window.__uiMarker = 42`)
	before := br.feedEvents()
	e.publish(t, "ui-orders", 5, "x")
	waitFor[bool](br, "ui-orders with 8 ready", cell+`?.textContent.trim() === "8"`, cell+`?.textContent ?? "no row"`)
	if after := br.feedEvents(); after <= before {
		t.Errorf("window.__chute.events went from %d to %d: the update did not come from the feed", before, after)
	}
	if m := eval[int](br, `window.__uiMarker ?? 0`); m != 42 {
		t.Error("the page reloaded (a marker set on window is gone)")
	}
	br.clear("input#filter")
	waitFor[bool](br, "both queues listed", `document.querySelector('tr[data-queue="ui-other"]')?.offsetParent != null`, "")
	br.noJunk("overview")
	br.screenshot("overview")
}

// TestQueuePage: the queue page shows the depth, the depth chart grows
// live, and peek shows a JSON body pretty-printed.
func TestQueuePage(t *testing.T) {
	e := newEnv(t, nil)
	e.createQueue(t, "ui-jobs", chute.QueueConfig{})
	body := `{"id":7,"items":["a","b"],"ok":true}`
	e.publish(t, "ui-jobs", 2, body)
	br := newBrowser(t, e.base, testTimeout)
	br.login(adminToken)
	br.route("#/queue/ui-jobs")

	waitFor[bool](br, "the title", `document.querySelector('#queue-title')?.textContent.includes("ui-jobs")`,
		`document.querySelector('#queue-title')?.textContent ?? "no title"`)
	stat := `document.querySelector('[data-stat=r]')`
	waitFor[bool](br, "a depth of 2", stat+`?.dataset.value === "2"`, stat+`?.outerHTML ?? "no stat"`)
	points := `Number(document.querySelector('#chart-depth')?.dataset.points ?? -1)`
	waitFor[bool](br, "the depth chart", `document.querySelector('#chart-depth[data-points]') !== null`, "")
	p0 := eval[int](br, points)

	e.publish(t, "ui-jobs", 3, body)
	waitFor[bool](br, "a depth of 5", stat+`?.dataset.value === "5"`, stat+`?.outerHTML ?? "no stat"`)
	waitFor[bool](br, fmt.Sprintf("the chart to grow beyond %d points", p0), fmt.Sprintf("%s > %d", points, p0),
		`document.querySelector('#chart-depth')?.outerHTML.slice(0, 200)`)

	br.do("peek", chromedp.Click(chromedp.CSS("button#peek")), chromedp.WaitVisible(chromedp.CSS(".peek-msg .peek-body")))
	text := eval[string](br, `document.querySelector('.peek-msg .peek-body').textContent`)
	if !strings.Contains(text, `"id": 7`) || !strings.Contains(text, "\n") {
		t.Errorf("the peeked body is not pretty-printed JSON: %q", text)
	}
	if n := eval[int](br, `document.querySelectorAll('.peek-msg[data-seq]').length`); n < 1 {
		t.Errorf("%d .peek-msg[data-seq] elements, want at least 1", n)
	}
	br.noJunk("queue")
	br.screenshot("queue")
}

// deadLetters makes n dead letters of queue "ui-work" in "ui-work.dlq"
// (one delivery allowed, each nacked).
func deadLetters(t *testing.T, e *env, n int) {
	t.Helper()
	e.createQueue(t, "ui-work.dlq", chute.QueueConfig{})
	e.createQueue(t, "ui-work", chute.QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "ui-work.dlq"})
	e.publish(t, "ui-work", n, `{"job":"resize"}`)
	ds, err := e.admin.Receive(e.ctx, "ui-work", chute.ReceiveOptions{Max: n})
	if err != nil || len(ds) != n {
		t.Fatalf("receive: %d deliveries, %v", len(ds), err)
	}
	for _, d := range ds {
		if err := e.admin.Nack(e.ctx, "ui-work", chute.Nack{Receipt: d.Receipt, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
	}
	chutetest.Eventually(t, fmt.Sprintf("%d dead letters", n), func() bool { return e.stats(t, "ui-work.dlq").Ready == int64(n) })
}

// TestDeadLetters: the dead-letter view lists the dead letters with
// reason and source; redriving a selected one (after confirming) moves
// it back to its queue, as both the Go client and the page see.
func TestDeadLetters(t *testing.T) {
	e := newEnv(t, nil)
	deadLetters(t, e, 3)
	br := newBrowser(t, e.base, testTimeout)
	br.login(adminToken)
	br.route("#/dlq/ui-work.dlq")

	rows := `document.querySelectorAll('tr.dl-row[data-seq]').length`
	waitFor[bool](br, "3 dead-letter rows", rows+` === 3`, `String(`+rows+`)`)
	row := eval[string](br, `document.querySelector('tr.dl-row').textContent`)
	if !strings.Contains(row, "max-deliveries") || !strings.Contains(row, "ui-work") {
		t.Errorf("a dead-letter row does not show the reason and the source: %q", row)
	}
	br.noJunk("dead-letters")
	br.screenshot("dead-letters")

	br.do("redrive one",
		chromedp.Click(chromedp.CSS("tr.dl-row input.dl-select")),
		chromedp.Click(chromedp.CSS("button#redrive-selected")),
		chromedp.WaitVisible(chromedp.CSS("dialog#confirm")),
		chromedp.Click(chromedp.CSS("button#confirm-ok")),
	)
	chutetest.Eventually(t, "the redrive", func() bool {
		return e.stats(t, "ui-work.dlq").Ready == 2 && e.stats(t, "ui-work").Ready == 1
	})
	waitFor[bool](br, "2 dead-letter rows", rows+` === 2`, `String(`+rows+`)`)
	br.route("#/queue/ui-work")
	stat := `document.querySelector('[data-stat=r]')`
	waitFor[bool](br, "ui-work with 1 ready", stat+`?.dataset.value === "1"`, stat+`?.outerHTML ?? "no stat"`)
}

// TestReadOnly: a read-only token logs in, sees no enabled admin
// buttons, and a call forced from the page is refused.
func TestReadOnly(t *testing.T) {
	e := newEnv(t, nil)
	deadLetters(t, e, 2)
	br := newBrowser(t, e.base, testTimeout)
	br.allow("403") // the forced purge
	br.login(readToken)

	if ro := evalAwait[bool](br, `fetch('/ui/api/session').then(r => r.json()).then(s => s.readOnly === true)`); !ro {
		t.Error("/ui/api/session does not say readOnly for the read token")
	}
	absent := func(sels ...string) string {
		return fmt.Sprintf(`%s.every(s => { const b = document.querySelector(s); return !b || b.disabled || b.offsetParent === null })`, jsList(sels))
	}
	br.route("#/dlq/ui-work.dlq")
	waitFor[bool](br, "the dead-letter rows", `document.querySelectorAll('tr.dl-row').length === 2`, "")
	if !eval[bool](br, absent("#purge", "#redrive-all", "#redrive-selected")) {
		t.Error("a read-only session sees enabled #purge, #redrive-all or #redrive-selected")
	}
	br.route("#/queue/ui-work")
	waitFor[bool](br, "the queue page", `document.querySelector('#queue-title')?.textContent.includes("ui-work")`, "")
	if !eval[bool](br, absent("#purge", "#pause", "#resume")) {
		t.Error("a read-only session sees enabled #purge, #pause or #resume")
	}

	status := evalAwait[int](br, `fetch('/chute.v1.AdminService/PurgeQueue', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'Connect-Protocol-Version': '1'},
		body: JSON.stringify({name: 'ui-work.dlq'})}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("a forced PurgeQueue from the read-only page answered %d, want 403", status)
	}
	if n := e.stats(t, "ui-work.dlq").Ready; n != 2 {
		t.Errorf("after the refused purge the dead-letter queue holds %d, want 2", n)
	}
}

// TestAlertsAndTopics: the alerts page lists a firing alert, the topics
// page a topic with its two subscriptions and a filter.
func TestAlertsAndTopics(t *testing.T) {
	e := newEnv(t, nil)
	e.createQueue(t, "ui-deep", chute.QueueConfig{Attributes: map[string]string{
		"alert.queue_depth.threshold": "1", "alert.queue_depth.for": "0s",
	}})
	e.publish(t, "ui-deep", 3, "x")
	if err := e.admin.CreateTopic(e.ctx, "ui-events", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Subscribe(e.ctx, "ui-events", "ui-events.billing", chute.SubscriptionConfig{Filter: map[string]string{"kind": "invoice"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Subscribe(e.ctx, "ui-events", "ui-events.audit", chute.SubscriptionConfig{}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, e.base, testTimeout)
	br.login(adminToken)

	br.route("#/alerts")
	alert := fmt.Sprintf(`[...document.querySelectorAll('tr.alert-row[data-rule=%s]')].find(r => r.textContent.includes("ui-deep"))`, alerts.RuleQueueDepth)
	waitFor[bool](br, "a queue_depth alert on ui-deep", alert+` !== undefined`,
		`[...document.querySelectorAll('tr.alert-row')].map(r => r.textContent).join(' | ') || document.body.innerText.slice(0, 300)`)
	br.noJunk("alerts")
	br.screenshot("alerts")

	br.route("#/topics")
	waitFor[bool](br, "the topic row", `document.querySelector('tr.topic-row[data-topic="ui-events"]') !== null`, "")
	waitFor[bool](br, "two subscriptions",
		`document.querySelector('.sub-row[data-sub="ui-events.billing"]') !== null && document.querySelector('.sub-row[data-sub="ui-events.audit"]') !== null`,
		`[...document.querySelectorAll('.sub-row')].map(r => r.dataset.sub).join(', ')`)
	billing := eval[string](br, `document.querySelector('.sub-row[data-sub="ui-events.billing"]').textContent`)
	if !strings.Contains(billing, "kind") || !strings.Contains(billing, "invoice") {
		t.Errorf("the billing subscription does not show its filter kind=invoice: %q", billing)
	}
	br.noJunk("topics")
	br.screenshot("topics")
}

// jsList renders strings as a JavaScript array literal.
func jsList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = js(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
