// Go net/smtp, used the way SendPigeon's documentation shows it.
//
// Usage: go-client CASE
// Settings come from the environment: SMTP_HOST, SMTP_PORT (STARTTLS), SMTPS_PORT (implicit
// TLS), API_KEY. The private
// CA is trusted through SSL_CERT_FILE (crypto/x509 reads it in place of the system store).
// Prints one JSON line: {"ok": true, "message_id": ...} or {"ok": false, "error": ...}.
// net/smtp does not return the server's reply to the message, so the Message-ID set here
// identifies it.
package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strings"
)

var (
	host = os.Getenv("SMTP_HOST")
	addr = net.JoinHostPort(host, os.Getenv("SMTP_PORT"))
	key  = os.Getenv("API_KEY")
)

// The Message-ID of the last message built.
var messageID string

func message(id, subject, body string) []byte {
	messageID = "<" + id + "@yourdomain.com>"
	return []byte("From: hello@yourdomain.com\r\n" +
		"To: test@example.com\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: " + messageID + "\r\n" +
		"\r\n" +
		body + "\r\n")
}

// The documentation's snippet: PlainAuth and SendMail, which upgrades with STARTTLS.
func sendMail(user, password string, msg []byte) error {
	auth := smtp.PlainAuth("", user, password, host)
	return smtp.SendMail(addr, auth, "hello@yourdomain.com", []string{"test@example.com"}, msg)
}

// The same by hand: Dial, StartTLS, Auth, Mail, Rcpt, Data, Quit.
func manual(startTLS bool, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	return deliver(c, startTLS, msg)
}

// Implicit TLS: SendMail cannot, but a TLS connection handed to NewClient can.
func implicit(msg []byte) error {
	implicitAddr := net.JoinHostPort(host, os.Getenv("SMTPS_PORT"))
	conn, err := tls.Dial("tcp", implicitAddr, &tls.Config{ServerName: host})
	if err != nil {
		return err
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	return deliver(c, false, msg)
}

func deliver(c *smtp.Client, startTLS bool, msg []byte) error {
	defer c.Close()
	if startTLS {
		// A nil RootCAs is the system store, which SSL_CERT_FILE replaces.
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if err := c.Auth(smtp.PlainAuth("", "apikey", key, host)); err != nil {
		return err
	}
	if err := c.Mail("hello@yourdomain.com"); err != nil {
		return err
	}
	if err := c.Rcpt("test@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func run(name string) error {
	switch name {
	case "docs":
		return sendMail("apikey", key, message("docs.go", "Test", "Hello from SMTP"))
	case "manual":
		return manual(true, message("manual.go", "Manual", "Hello from net/smtp"))
	case "implicit":
		return implicit(message("implicit.go", "Implicit", "Hello over implicit TLS"))
	case "wrong_key":
		return sendMail("apikey", "sk_live_not_a_real_key", message("wrong-key.go", "Test", "x"))
	case "wrong_user":
		return sendMail("admin", key, message("wrong-user.go", "Test", "x"))
	case "too_big":
		// 27.6 MB of text lines, over the 25 MB limit.
		line := strings.Repeat("0123456789", 9) + "\r\n"
		return sendMail("apikey", key, message("too-big.go", "Too big", strings.Repeat(line, 300000)))
	case "no_starttls":
		// Auth without StartTLS: PlainAuth allows it to localhost, the relay does not.
		return manual(false, message("no-starttls.go", "Test", "x"))
	}
	fmt.Fprintln(os.Stderr, "unknown case", name)
	os.Exit(2)
	return nil
}

func main() {
	out := map[string]any{}
	if err := run(os.Args[1]); err != nil {
		out["ok"], out["error"] = false, err.Error()
	} else {
		out["ok"], out["message_id"] = true, messageID
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
