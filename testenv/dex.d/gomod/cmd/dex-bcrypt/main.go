// dex-bcrypt reads one password on stdin and prints its bcrypt hash, the
// form dex's staticPasswords take. testenv/dex uses it to write test users
// whose passwords the tests know (there is no bcrypt tool in Debian's base).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(os.Stderr, "dex-bcrypt: no password on stdin")
		os.Exit(2)
	}
	password := strings.TrimSuffix(line, "\n")
	if password == "" {
		fmt.Fprintln(os.Stderr, "dex-bcrypt: empty password")
		os.Exit(2)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dex-bcrypt:", err)
		os.Exit(1)
	}
	fmt.Println(string(hash))
}
