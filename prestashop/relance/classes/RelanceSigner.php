<?php
/**
 * Relance - Standard Webhooks 1.0 signatures.
 *
 * The signature is v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">, keyed with the
 * base64-decoded part of the secret after "whsec_".
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceSigner
{
    const TOLERANCE_SECONDS = 300;

    /** @var string raw HMAC key */
    private $key;

    /**
     * @param string $secret "whsec_" followed by base64 (the prefix is optional)
     *
     * @throws InvalidArgumentException when the secret is not valid base64
     */
    public function __construct($secret)
    {
        $secret = trim((string) $secret);
        if (strpos($secret, 'whsec_') === 0) {
            $secret = substr($secret, 6);
        }
        $key = base64_decode($secret, true);
        if ($key === false || $key === '') {
            throw new InvalidArgumentException('The webhook secret must be "whsec_" followed by base64.');
        }
        $this->key = $key;
    }

    /**
     * @param string $secret
     *
     * @return bool whether the secret can be used to sign
     */
    public static function isValidSecret($secret)
    {
        try {
            new self($secret);
        } catch (InvalidArgumentException $e) {
            return false;
        }

        return strpos(trim((string) $secret), 'whsec_') === 0;
    }

    /**
     * A new message id, unique per event: "msg_" and 32 hex digits.
     *
     * @return string
     */
    public static function newMessageId()
    {
        return 'msg_' . bin2hex(random_bytes(16));
    }

    /**
     * @param string $msgId
     * @param int $timestamp Unix seconds
     * @param string $body the raw body, exactly as sent
     *
     * @return string "v1,<base64>"
     */
    public function sign($msgId, $timestamp, $body)
    {
        $mac = hash_hmac('sha256', $msgId . '.' . (int) $timestamp . '.' . $body, $this->key, true);

        return 'v1,' . base64_encode($mac);
    }

    /**
     * The three headers of one attempt.
     *
     * @param string $msgId
     * @param int $timestamp
     * @param string $body
     *
     * @return array<string, string>
     */
    public function headers($msgId, $timestamp, $body)
    {
        return [
            'webhook-id' => (string) $msgId,
            'webhook-timestamp' => (string) (int) $timestamp,
            'webhook-signature' => $this->sign($msgId, $timestamp, $body),
        ];
    }

    /**
     * Check headers (webhook-* or svix-*, any case) against the body; every candidate
     * signature is compared in constant time.
     *
     * @param array<string, string> $headers
     * @param string $body
     * @param int $now Unix seconds
     *
     * @return bool
     */
    public function verify(array $headers, $body, $now)
    {
        $lower = [];
        foreach ($headers as $name => $value) {
            $lower[strtolower((string) $name)] = (string) $value;
        }
        $msgId = self::header($lower, 'id');
        $timestamp = self::header($lower, 'timestamp');
        $signatures = self::header($lower, 'signature');
        if ($msgId === '' || $signatures === '' || !preg_match('/^[0-9]+$/', $timestamp)) {
            return false;
        }
        if (abs((int) $now - (int) $timestamp) > self::TOLERANCE_SECONDS) {
            return false;
        }
        $expected = $this->sign($msgId, (int) $timestamp, $body);
        $valid = false;
        foreach (preg_split('/\s+/', trim($signatures)) as $candidate) {
            if (strpos($candidate, 'v1,') === 0 && hash_equals($expected, $candidate)) {
                $valid = true;
            }
        }

        return $valid;
    }

    /**
     * @param array<string, string> $headers lower-cased names
     * @param string $name
     *
     * @return string
     */
    private static function header(array $headers, $name)
    {
        if (isset($headers['webhook-' . $name])) {
            return $headers['webhook-' . $name];
        }

        return isset($headers['svix-' . $name]) ? $headers['svix-' . $name] : '';
    }
}
