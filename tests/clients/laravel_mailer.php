<?php
// Laravel 9+ mail: Symfony Mailer's SMTP transport built from MAIL_HOST, MAIL_PORT,
// MAIL_USERNAME, MAIL_PASSWORD and MAIL_ENCRYPTION=tls the way Laravel's MailManager does.
//
// Usage: php -d openssl.cafile=CA laravel_mailer.php CASE
// (the private CA is trusted through PHP's openssl.cafile setting, as in php.ini)
// Settings come from the environment: MAIL_* as in Laravel's .env, SMTPS_PORT for implicit TLS,
// FILES (invoice.pdf, logo.png, big.bin).
// Prints one JSON line: {"ok": true, "message_id": getMessageId(), "reply": <the 250>,
// "newer_message_id": <what newer Symfony Mailers' getMessageId() returns>} or
// {"ok": false, "error": ...}.

require_once '/usr/share/php/Symfony/Component/Mailer/autoload.php';

use Symfony\Component\Mailer\Transport\Dsn;
use Symfony\Component\Mailer\Transport\Smtp\EsmtpTransportFactory;
use Symfony\Component\Mailer\Exception\TransportExceptionInterface;
use Symfony\Component\Mime\Address;
use Symfony\Component\Mime\Email;

$files = getenv('FILES');

// config/mail.php's "smtp" mailer.
function mail_config(array $overrides = []): array
{
    return array_merge([
        'transport' => 'smtp',
        'host' => getenv('MAIL_HOST'),
        'port' => (int) getenv('MAIL_PORT'),
        'encryption' => getenv('MAIL_ENCRYPTION'),
        'username' => getenv('MAIL_USERNAME'),
        'password' => getenv('MAIL_PASSWORD'),
    ], $overrides);
}

// Illuminate\Mail\MailManager::createSmtpTransport (Laravel 9 and later; 'scheme', MAIL_SCHEME,
// only in newer versions).
function smtp_transport(array $config)
{
    $scheme = $config['scheme'] ?? null;
    if (!$scheme) {
        $scheme = !empty($config['encryption']) && $config['encryption'] === 'tls'
            ? (($config['port'] == 465) ? 'smtps' : 'smtp')
            : '';
    }
    return (new EsmtpTransportFactory())->create(new Dsn(
        $scheme, $config['host'], $config['username'] ?? null, $config['password'] ?? null,
        $config['port'] ?? null, $config
    ));
}

function docs_message(): Email
{
    return (new Email())
        ->from('hello@yourdomain.com')
        ->to('test@example.com')
        ->subject('Test')
        ->html('<h1>Hello from SendPigeon</h1>');
}

function rich_message(string $files): Email
{
    $email = (new Email())
        ->from(new Address('billing@acme.example', 'Zoë Müller'))
        ->to(new Address('jane@example.com', 'Jane Doe'))
        ->cc(new Address('ops@acme.example', 'Öps Team'))
        ->bcc('audit@acme.example')
        ->replyTo(new Address('support@acme.example', 'Acme Support'))
        ->subject('Grüße aus Köln — Rechnung №1234 für Zoë Müller, fällig am 1. März 2026')
        ->text("Hi Jane,\nyour invoice №1234 is attached. Grüße!\n")
        // Symfony replaces cid:logo.png with the Content-ID it generates for the image.
        ->html('<p>Hi Jane, your invoice №1234 is attached.</p><img src="cid:logo.png" alt="Acme">')
        ->embedFromPath("$files/logo.png", 'logo.png', 'image/png')
        ->attachFromPath("$files/invoice.pdf", 'Rechnung №1234.pdf', 'application/pdf');
    $headers = $email->getHeaders();
    $headers->addTextHeader('X-Entity-Ref-ID', 'invoice-1234');
    $headers->addTextHeader('List-Unsubscribe', '<https://acme.example/u/abc>');
    $headers->addTextHeader('X-SP-Track-Opens', 'true');
    $headers->addTextHeader('X-SP-Track-Clicks', 'false');
    return $email;
}

function send(Email $email, array $overrides = []): array
{
    // Laravel's Mail::send returns the transport's SentMessage.
    $sent = smtp_transport(mail_config($overrides))->send($email);
    // The server's reply to the message, from the transcript Symfony keeps.
    preg_match_all('/^< (250 .*)$/m', $sent->getDebug(), $replies);
    $reply = trim(end($replies[1]));
    // Newer Symfony Mailer versions read the queue id from that reply into getMessageId()
    // (SmtpTransport::parseMessageId, this pattern); Debian 12's 5.4 keeps the Message-ID.
    preg_match('/^250 (?:\S+ )?Ok:?+ (?:queued as |id=)?+(?P<id>[A-Z0-9._-]++)/im', $reply, $m);
    return [
        'message_id' => $sent->getMessageId(),
        'reply' => $reply,
        'newer_message_id' => $m['id'] ?? null,
    ];
}

function run(string $case, string $files): array
{
    switch ($case) {
        case 'docs': return send(docs_message());
        case 'rich': return send(rich_message($files));
        // Implicit TLS: Laravel picks it for port 465, or for MAIL_SCHEME=smtps.
        case 'implicit':
            $implicit = ['port' => (int) getenv('SMTPS_PORT'), 'scheme' => 'smtps'];
            return send(rich_message($files), $implicit);
        case 'wrong_key': return send(docs_message(), ['password' => 'sk_live_not_a_real_key']);
        case 'wrong_user': return send(docs_message(), ['username' => 'admin']);
        case 'too_big':
            return send(docs_message()->subject('Too big')->attachFromPath("$files/big.bin", 'big.bin'));
        default: fwrite(STDERR, "unknown case $case\n"); exit(2);
    }
}

try {
    echo json_encode(['ok' => true] + run($argv[1], $files), JSON_UNESCAPED_UNICODE), "\n";
} catch (TransportExceptionInterface $e) {
    echo json_encode(['ok' => false, 'error' => $e->getMessage()], JSON_UNESCAPED_UNICODE), "\n";
}
