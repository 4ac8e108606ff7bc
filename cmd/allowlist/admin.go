package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/postgres"
	"github.com/cross-gov/allowlist/allowlist/sqlite"
	"gopkg.in/yaml.v3"
)

func runTokenCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token create", "token create --db PATH --role admin|owner|reader [--department ID] --name NAME [--expires 720h]", stderr)
	db := fs.String("db", "", "database: SQLite path (created if missing) or postgres:// URL")
	role := fs.String("role", "", "admin, owner or reader")
	dept := fs.String("department", "", "the department of an owner, or of a reader whose resolver sends usage reports")
	name := fs.String("name", "", "who or what the token is for")
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (default: no expiry)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *db == "" {
		return errors.New("--db is required")
	}
	store, undo, fresh, err := openOrCreate(*db)
	if err != nil {
		return err
	}
	defer store.Close()
	t := allowlist.Token{Role: *role, Department: *dept, Name: *name}
	if *expires > 0 {
		e := time.Now().Add(*expires)
		t.ExpiresAt = &e
	}
	t, secret, err := store.CreateToken(context.Background(), allowlist.System, t)
	if err != nil {
		undo()
		return err
	}
	if fresh {
		noteNewDatabase(stderr, *db)
	}
	fmt.Fprintf(stderr, "created %s token %d (%s); it is shown once:\n", t.Role, t.ID, t.Name)
	fmt.Fprintln(stdout, secret)
	return nil
}

func runTokenRevoke(args []string, stdout, stderr io.Writer) error {
	return runRevoke("token revoke", "token", args, stdout, stderr, func(ctx context.Context, db *sqlite.DB, id int64) error {
		return db.RevokeToken(ctx, allowlist.System, id)
	})
}

// runTokenList prints one line per token: id, role, department (or -),
// name, created, and its state. Secrets are never stored, so never shown.
func runTokenList(args []string, stdout, stderr io.Writer) error {
	return withStore("token list", "token list --db PATH\n\nOne line per token: id, role, department, name, created, state (active, expires ..., expired ..., revoked ...)", "", args, stderr, func(store *sqlite.DB) error {
		tokens, err := store.FindTokens(context.Background())
		if err != nil {
			return err
		}
		now := time.Now()
		for _, t := range tokens {
			fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, orDash(t.Department), t.Name, t.CreatedAt.UTC().Format(time.RFC3339), tokenState(t, now))
		}
		return nil
	})
}

// withStore is a command whose only flag is --db (default dflt), run on
// an existing database that it closes afterwards.
func withStore(name, usage, dflt string, args []string, stderr io.Writer, run func(*sqlite.DB) error) error {
	fs := newFlags(name, usage, stderr)
	db := fs.String("db", dflt, "database: SQLite path or postgres:// URL")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, err := openExisting(*db)
	if err != nil {
		return err
	}
	defer store.Close()
	return run(store)
}

func tokenState(t allowlist.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked " + t.RevokedAt.UTC().Format(time.RFC3339)
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired " + t.ExpiresAt.UTC().Format(time.RFC3339)
	case t.ExpiresAt != nil:
		return "active, expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return "active"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runRevoke is a "NAME --db PATH ID" command that revokes a credential.
func runRevoke(name, what string, args []string, stdout, stderr io.Writer, revoke func(context.Context, *sqlite.DB, int64) error) error {
	fs := newFlags(name, name+" --db PATH ID", stderr)
	db := fs.String("db", "", "database: SQLite path or postgres:// URL")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("give one %s id", what)
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil {
		return fmt.Errorf("%s id %q is not a number", what, pos[0])
	}
	store, err := openExisting(*db)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := revoke(context.Background(), store, id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s %d\n", what, id)
	return nil
}

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", "import FILE.yaml --db PATH [--merge]\n\nLoads a catalogue (departments with their contacts, sites with their sign-offs),\nall or nothing. Into a registry that already has some of them, add --merge to\nskip the departments and sites whose ids exist (they are left as they are).", stderr)
	db := fs.String("db", "var/registry.db", "database: SQLite path (created if missing) or postgres:// URL")
	merge := fs.Bool("merge", false, "skip departments and sites that already exist instead of refusing the file")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("give one YAML file")
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	c, err := decodeCatalogue(b)
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was imported)", pos[0], err)
	}
	store, undo, _, err := openOrCreate(*db)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := context.Background()
	c, skipped, err := skipExisting(ctx, store, c, *merge)
	if err != nil {
		undo()
		return err
	}
	if err := store.Import(ctx, allowlist.System, c); err != nil {
		undo()
		return explain(b, pos[0], err)
	}
	nd, ns := int64(len(c.Departments)), int64(len(c.Sites))
	fmt.Fprintf(stdout, "imported %d %s and %d %s", nd, plural(nd, "department", "departments"), ns, plural(ns, "site", "sites"))
	if skipped != "" {
		fmt.Fprintf(stdout, "; skipped, as they exist: %s", skipped)
	}
	fmt.Fprintln(stdout)
	return nil
}

// skipExisting drops from c the departments and sites the registry has
// already (merge), or refuses c naming the first of them.
func skipExisting(ctx context.Context, store *sqlite.DB, c allowlist.Catalogue, merge bool) (allowlist.Catalogue, string, error) {
	depts, err := store.FindDepartments(ctx)
	if err != nil {
		return c, "", err
	}
	sites, err := store.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return c, "", err
	}
	have := map[string]bool{}
	for _, d := range depts {
		have["department "+d.ID] = true
	}
	for _, s := range sites {
		have["site "+s.ID] = true
	}
	var skipped []string
	out := allowlist.Catalogue{}
	for _, d := range c.Departments {
		if have["department "+d.ID] {
			skipped = append(skipped, "department "+d.ID)
			continue
		}
		out.Departments = append(out.Departments, d)
	}
	for _, s := range c.Sites {
		if have["site "+s.ID] {
			skipped = append(skipped, "site "+s.ID)
			continue
		}
		out.Sites = append(out.Sites, s)
	}
	if len(skipped) > 0 && !merge {
		return c, "", fmt.Errorf("the registry already has %s (and %d more departments or sites from this file); nothing was imported. "+
			"Add --merge to import only what is new, or import into a new --db path", skipped[0], len(skipped)-1)
	}
	return out, strings.Join(skipped, ", "), nil
}

func runExport(args []string, stdout, stderr io.Writer) error {
	return withStore("export", "export --db PATH > FILE.yaml", "var/registry.db", args, stderr, func(store *sqlite.DB) error {
		c, err := store.Export(context.Background())
		if err != nil {
			return err
		}
		enc := yaml.NewEncoder(stdout)
		enc.SetIndent(2)
		if err := enc.Encode(c); err != nil {
			return err
		}
		return enc.Close()
	})
}

func runAuditVerify(args []string, stdout, stderr io.Writer) error {
	return withStore("audit verify", "audit verify --db PATH", "var/registry.db", args, stderr, func(store *sqlite.DB) error {
		seq, ok, err := store.VerifyAudit(context.Background())
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{code: 1, err: fmt.Errorf("audit chain broken at entry %d", seq)}
		}
		fmt.Fprintf(stdout, "audit chain intact: %d %s checked, each hash covering the one before\n", seq, plural(seq, "entry", "entries"))
		return nil
	})
}

func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "keygen [--key PATH | --db PATH]", stderr)
	db := fs.String("db", "var/registry.db", "database whose key to use (key at DB + .key)")
	keyPath := fs.String("key", "", "key file (overrides --db)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	path := *keyPath
	if path == "" {
		path = keyPathFor(*db)
	}
	if path == "" {
		return errors.New("give --key FILE (or set ALLOWLIST_SIGNING_KEY) for a PostgreSQL registry")
	}
	key, created, err := loadOrCreateKey(path)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stderr, "created signing key %s\n", path)
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	return nil
}

func runBackup(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", "backup --db PATH --out FILE", stderr)
	db := fs.String("db", "var/registry.db", "live SQLite database path")
	out := fs.String("out", "", "where to write the copy (must not exist)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if postgres.IsURL(*db) {
		return errors.New("back up a PostgreSQL registry with pg_dump (see docs/operations.md)")
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s already exists", *out)
	}
	store, err := openExisting(*db)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(context.Background(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; copy %s with it, it signs the lists\n", *out, keyPathFor(*db))
	return nil
}

// openOrCreate opens a database, creating it if missing; undo closes it
// and removes what opening created (the database, its journal files and
// its signing key), so a command that then fails leaves nothing behind.
// fresh says whether the database was created now (SQLite only).
func openOrCreate(path string) (store *sqlite.DB, undo func(), fresh bool, err error) {
	created := []string{}
	for _, f := range []string{path, path + "-wal", path + "-shm", path + "-journal", keyPathFor(path)} {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			created = append(created, f)
		}
	}
	fresh = !postgres.IsURL(path) && len(created) > 0 && created[0] == path
	store, err = openDB(path, "", sqlite.Options{})
	if err != nil {
		removeAll(created)
		return nil, nil, false, err
	}
	undo = func() {
		store.Close()
		removeAll(created)
	}
	return store, undo, fresh, nil
}

// noteNewDatabase tells the user, on standard error, that --db named no
// existing database: a credential made in a new, empty one does not work
// on the registry they meant.
func noteNewDatabase(stderr io.Writer, path string) {
	fmt.Fprintf(stderr, "note: %s did not exist; it is a new, empty registry database (if you meant your registry's, give its path with --db)\n", path)
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

// openExisting opens a database that must already exist: commands that
// read one should not create an empty registry by mistake.
func openExisting(path string) (*sqlite.DB, error) {
	if postgres.IsURL(path) {
		return openDB(path, "", sqlite.Options{}) // the server says if it exists
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return openDB(path, "", sqlite.Options{})
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
