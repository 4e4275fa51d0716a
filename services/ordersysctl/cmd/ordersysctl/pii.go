package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ordersys/ordersys/pkg/pii"
)

// piiKEK returns the command that writes a key-encryption key file (ORDERSYS_PII_KEK_FILE,
// docs/privacy.md): new makes a file with one AES256-GCM key and refuses to overwrite one;
// rotate adds a new primary key to a file; drop-old removes every key but the primary (after
// the command service re-wrapped every data key). The file is written 0600, in place.
func piiKEK(verb string) command {
	return func(_ context.Context, o options, args []string) error {
		fs := cmdFlags("pii-kek " + verb)
		if err := o.parseCmd(fs, args, 1, 1); err != nil {
			return err
		}
		args = fs.Args()
		path := args[0]
		var (
			out []byte
			err error
		)
		if verb == "new" {
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: a new KEK would make every data key it wraps unreadable", path)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			out, err = pii.GenerateKEK()
		} else {
			in, rerr := os.ReadFile(path)
			if rerr != nil {
				return rerr
			}
			if verb == "rotate" {
				out, err = pii.RotateKEK(in)
			} else {
				out, err = pii.DropOldKEKKeys(in)
			}
		}
		if err != nil {
			return err
		}
		k, err := pii.ParseKEK(out)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path+".tmp", out, 0o600); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "%s: KEK with %d key(s), primary key id %d\n", path, k.Keys(), k.PrimaryKeyID())
		return nil
	}
}
