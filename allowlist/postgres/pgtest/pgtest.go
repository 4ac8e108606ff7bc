// Package pgtest starts a real PostgreSQL server for tests: initdb in a
// temporary directory, postgres on a free loopback port, stopped by its
// PID. As root it runs them as a system user it creates (initdb and
// postgres refuse root).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrMissing is returned when no PostgreSQL server binaries are installed.
var ErrMissing = errors.New("PostgreSQL not found (Debian: apt-get install postgresql-15)")

// systemUser runs the server when the tests run as root.
const systemUser = "allowlist-pgtest"

// Server is a running PostgreSQL server.
type Server struct {
	Port int
	bin  string
	dir  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	dbs  atomic.Int64
}

// BinDir finds the server binaries: Debian's PostgreSQL 15, the newest
// Debian one, or postgres on PATH.
func BinDir() (string, error) {
	for _, d := range []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin", "/usr/local/bin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
				return d, nil
			}
		}
	}
	return "", ErrMissing
}

// Start initialises a cluster in a new temporary directory and starts it.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "allowlist-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		if s.cred, err = ensureUser(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := s.command("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if s.Port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Main runs a test binary's tests with a server in s, stopped afterwards.
// Without PostgreSQL it runs them with s nil (tests then call Need),
// unless CI=true, where a missing server fails the run.
func Main(m *testing.M, s **Server) int {
	srv, err := Start()
	if err != nil {
		if !errors.Is(err, ErrMissing) || os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			return 1
		}
		missing = err
		return m.Run()
	}
	*s = srv
	defer srv.Stop()
	return m.Run()
}

var missing error

// Need skips t when Main found no PostgreSQL (never in CI: Main fails).
func Need(t testing.TB, s *Server) {
	t.Helper()
	if s == nil {
		t.Skip(missing)
	}
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.Dir = s.dir
	// Should the test binary die without stopping it, the server goes
	// too (SIGQUIT: immediate shutdown).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

// Restart starts the server again after Kill or Stop, on the same port
// with the same data.
func (s *Server) Restart() error {
	s.cmd = s.command("postgres", "-D", s.data(), "-p", strconv.Itoa(s.Port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off")
	log, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	err = s.cmd.Start()
	log.Close()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			s.Kill()
			return fmt.Errorf("postgres did not start: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL to its PID), as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Shutdown stops the server cleanly (SIGINT: fast shutdown) and waits.
func (s *Server) Shutdown() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		s.cmd = nil
	}
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() {
	s.Shutdown()
	os.RemoveAll(s.dir)
}

// URL is the address of database name on the server.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase() (string, error) {
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// Database is NewDatabase for one test, failing it on error.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	Need(t, s)
	url, err := s.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func ensureUser() (*syscall.Credential, error) {
	u, err := user.Lookup(systemUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", systemUser).CombinedOutput(); err != nil {
			// Another test binary may have created it meanwhile.
			if u, err2 := user.Lookup(systemUser); err2 == nil {
				return credential(u)
			}
			return nil, fmt.Errorf("useradd %s: %v: %s", systemUser, err, out)
		}
		if u, err = user.Lookup(systemUser); err != nil {
			return nil, err
		}
	}
	return credential(u)
}

func credential(u *user.User) (*syscall.Credential, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
