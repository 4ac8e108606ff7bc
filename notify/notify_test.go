package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/notify"
	"github.com/cross-gov/allowlist/notify/notifytest"
)

func TestSMTPDeliversToRealExim(t *testing.T) {
	exim := notifytest.StartExim(t)
	s := notify.SMTP{Addr: exim.Addr, From: "registry@allowlist.test", Timeout: 10 * time.Second}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	subject := "Wiki awaits your decision\r\nBcc: victim@example.org"
	if err := s.Send("owners@dept-a.example.org", subject, "Wiki was proposed.\nDécidez: https://registry.example.org/owner\n"); err != nil {
		t.Fatal(err)
	}
	box := exim.WaitFor(t, 10*time.Second, "Envelope-to: owners@dept-a.example.org", "Subject: Wiki awaits your decision")
	if strings.Contains(box, "\nBcc:") {
		t.Errorf("a subject added a header:\n%s", box)
	}
	if !strings.Contains(box, "D=C3=A9cidez") {
		t.Errorf("the body is not quoted-printable UTF-8:\n%s", box)
	}
	if err := (notify.SMTP{Addr: exim.Addr, From: "registry@allowlist.test", StartTLS: "always"}).Send("a@example.org", "x", "y"); err == nil {
		t.Error("starttls: always sent over a server without STARTTLS")
	}
}

func TestSMTPValidate(t *testing.T) {
	for _, tt := range []struct {
		s   notify.SMTP
		bad bool
	}{
		{notify.SMTP{}, false},
		{notify.SMTP{Addr: "relay.example.org:587", From: "registry@example.org"}, false},
		{notify.SMTP{Addr: "relay.example.org", From: "registry@example.org"}, true},
		{notify.SMTP{Addr: "relay.example.org:25", From: "not an address"}, true},
		{notify.SMTP{Addr: "relay.example.org:25", From: "a@example.org", StartTLS: "sometimes"}, true},
		{notify.SMTP{Addr: "relay.example.org:25", From: "a@example.org", Username: "u"}, true},
	} {
		if err := tt.s.Validate(); (err != nil) != tt.bad {
			t.Errorf("%+v: %v", tt.s, err)
		}
	}
}

func TestSignature(t *testing.T) {
	got := notify.Signature("whsec_k", 1700000000, []byte(`{"a":1}`))
	// HMAC-SHA256("whsec_k", "1700000000.{\"a\":1}"), computed with openssl.
	if want := "t=1700000000,sha256=a252a4340d8bbbdbac8643a2812cc7d628ad79bfba544bff054ac2fa10f795a2"; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
}
