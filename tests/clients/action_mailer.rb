# Rails Action Mailer, configured the way SendPigeon's documentation shows it.
#
# Usage: ruby action_mailer.rb CASE
# Settings come from the environment: SMTP_HOST, SMTP_PORT (STARTTLS), SMTPS_PORT (implicit
# TLS), CA_FILE (the private CA to trust; empty: the system store), API_KEY, FILES
# (invoice.pdf, logo.png, big.bin).
# Prints one JSON line: {"ok": true, "message_id": ..., "reply": <the 250, where asked for>}
# or {"ok": false, "error": ...}.
require "action_mailer"
require "json"

FILES = ENV.fetch("FILES")
DOCS_SETTINGS = {
  address: ENV.fetch("SMTP_HOST"),
  port: Integer(ENV.fetch("SMTP_PORT")),
  user_name: "apikey",
  password: ENV.fetch("API_KEY"),
  authentication: :plain,
  enable_starttls_auto: true,
  # Trust the development CA (CA_FILE); in production the relay's chain is publicly trusted
  # and the system store is enough.
  ca_file: ENV["CA_FILE"].to_s.empty? ? nil : ENV["CA_FILE"],
}.freeze

ActionMailer::Base.delivery_method = :smtp
ActionMailer::Base.smtp_settings = DOCS_SETTINGS
ActionMailer::Base.raise_delivery_errors = true
ActionMailer::Base.view_paths = []

class InvoiceMailer < ActionMailer::Base
  def docs
    mail(from: "hello@yourdomain.com", to: "test@example.com", subject: "Test") do |format|
      format.text { render plain: "Hello from SMTP" }
    end
  end

  def rich
    attachments["Rechnung №1234.pdf"] = File.binread("#{FILES}/invoice.pdf")
    attachments.inline["logo.png"] = File.binread("#{FILES}/logo.png")
    headers["X-Entity-Ref-ID"] = "invoice-1234"
    headers["List-Unsubscribe"] = "<https://acme.example/u/abc>"
    headers["X-SP-Track-Opens"] = "true"
    headers["X-SP-Track-Clicks"] = "false"
    logo = attachments["logo.png"].url # "cid:<generated Content-ID>"
    mail(
      from: "Zoë Müller <billing@acme.example>",
      to: "Jane Doe <jane@example.com>",
      cc: "Öps Team <ops@acme.example>",
      bcc: "audit@acme.example",
      reply_to: "Acme Support <support@acme.example>",
      subject: "Grüße aus Köln — Rechnung №1234 für Zoë Müller, fällig am 1. März 2026",
    ) do |format|
      format.text { render plain: "Hi Jane,\nyour invoice №1234 is attached. Grüße!\n" }
      html = %(<p>Hi Jane, your invoice №1234 is attached.</p><img src="#{logo}" alt="Acme">)
      format.html { render html: html.html_safe }
    end
  end

  def too_big
    attachments["big.bin"] = File.binread("#{FILES}/big.bin")
    mail(from: "hello@yourdomain.com", to: "test@example.com", subject: "Too big") do |format|
      format.text { render plain: "See the attachment." }
    end
  end
end

def with_settings(changes)
  ActionMailer::Base.smtp_settings = DOCS_SETTINGS.merge(changes)
  yield
ensure
  ActionMailer::Base.smtp_settings = DOCS_SETTINGS
end

# return_response makes deliver_now! return the server's reply to the message.
def deliver_rich(settings)
  with_settings(settings.merge(return_response: true)) do
    mail = InvoiceMailer.rich
    response = mail.deliver_now!
    { reply: response.string.chomp, message_id: mail.message_id,
      content_ids: mail.attachments.to_h { |a| [a.filename, a.content_id] } }
  end
end

def run(name)
  case name
  when "docs"
    # The documentation's call; deliver_now returns the message, not the server's reply.
    { message_id: InvoiceMailer.docs.deliver_now.message_id }
  when "rich" then deliver_rich({})
  # Implicit TLS: ssl: true (or tls: true) on the other port.
  when "implicit" then deliver_rich(port: Integer(ENV.fetch("SMTPS_PORT")), ssl: true)
  when "wrong_key"
    with_settings(password: "sk_live_not_a_real_key") { InvoiceMailer.docs.deliver_now }
  when "wrong_user"
    with_settings(user_name: "admin") { InvoiceMailer.docs.deliver_now }
  when "too_big" then InvoiceMailer.too_big.deliver_now
  # Turning STARTTLS off: net-smtp 0.3 still upgrades when the server offers it (its own
  # default), but without the ca_file above.
  when "no_starttls"
    with_settings(enable_starttls_auto: false) { InvoiceMailer.docs.deliver_now }
  else abort "unknown case #{name}"
  end
end

begin
  result = run(ARGV.fetch(0))
  puts JSON.generate({ ok: true }.merge(result.is_a?(Hash) ? result : {}))
rescue Net::SMTPError, Net::ReadTimeout, OpenSSL::SSL::SSLError, IOError => e
  puts JSON.generate(ok: false, error: "#{e.class}: #{e.message}")
end
