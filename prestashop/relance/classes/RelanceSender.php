<?php
/**
 * Relance - posts one signed event and says what to do next.
 *
 * Every attempt is signed anew: the same webhook-id, a fresh timestamp, so an outage longer
 * than Relance's 5-minute tolerance or a skewed clock does not lose events.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceSender
{
    /** 2xx: delivered, the outbox row is removed */
    const SENT = 'sent';
    /** network error, 5xx, 429, other 4xx: tried again later */
    const RETRY = 'retry';
    /** 401: tried again later, with a warning (clock or secret) */
    const RETRY_AUTH = 'retry_auth';
    /** 404, 410, 413, 422: never tried again; shown on the configuration page */
    const STOP = 'stop';

    const CONNECT_TIMEOUT = 3;
    const TIMEOUT = 5;

    /** back-off: 1 min, doubling, at most 6 h */
    const FIRST_DELAY = 60;
    const MAX_DELAY = 21600;

    /** @var RelanceSigner */
    private $signer;

    /** @var callable(string, array<string, string>, string, int): array<string, mixed> */
    private $transport;

    /**
     * @param RelanceSigner $signer
     * @param callable|null $transport function ($url, $headers, $body, $timeout) returning
     *                                 ['status' => int (0 on network error), 'body' => string,
     *                                 'error' => string, 'retry_after' => int]; cURL by default
     */
    public function __construct(RelanceSigner $signer, $transport = null)
    {
        $this->signer = $signer;
        $this->transport = $transport !== null ? $transport : [__CLASS__, 'curlTransport'];
    }

    /**
     * One attempt.
     *
     * @param string $url the shop's endpoint, .../webhooks/prestashop/{shop_id}
     * @param string $webhookId
     * @param string $body
     * @param int $now Unix seconds (the webhook-timestamp)
     * @param int $timeout seconds
     *
     * @return array<string, mixed> status, body, error, retry_after, outcome (one of the constants)
     */
    public function send($url, $webhookId, $body, $now, $timeout = self::TIMEOUT)
    {
        $headers = $this->signer->headers($webhookId, $now, $body);
        $headers['Content-Type'] = 'application/json';
        $headers['User-Agent'] = 'relance-prestashop';
        $answer = call_user_func($this->transport, $url, $headers, $body, $timeout);
        $answer += ['status' => 0, 'body' => '', 'error' => '', 'retry_after' => 0];
        $answer['outcome'] = self::classify((int) $answer['status']);

        return $answer;
    }

    /**
     * @param int $status HTTP status, 0 for a network error
     *
     * @return string one of SENT, RETRY, RETRY_AUTH, STOP
     */
    public static function classify($status)
    {
        if ($status >= 200 && $status < 300) {
            return self::SENT;
        }
        if ($status === 401) {
            return self::RETRY_AUTH;
        }
        if (in_array($status, [404, 410, 413, 422], true)) {
            return self::STOP;
        }

        return self::RETRY;
    }

    /**
     * Seconds to wait after the given number of failed attempts (1 = the first failure).
     *
     * @param int $attempts
     * @param int $retryAfter the server's Retry-After in seconds, 0 when none
     *
     * @return int
     */
    public static function delay($attempts, $retryAfter = 0)
    {
        $attempts = max(1, (int) $attempts);
        $delay = $attempts > 20 ? self::MAX_DELAY : min(self::MAX_DELAY, self::FIRST_DELAY * (1 << ($attempts - 1)));

        return max($delay, min(self::MAX_DELAY, (int) $retryAfter));
    }

    /**
     * The endpoint of one shop.
     *
     * @param string $baseUrl Relance's URL, e.g. https://reviews.example.com
     * @param string $shopId
     *
     * @return string
     */
    public static function endpoint($baseUrl, $shopId)
    {
        return rtrim(trim((string) $baseUrl), '/') . '/webhooks/prestashop/' . rawurlencode(trim((string) $shopId));
    }

    /**
     * POST with cURL: no redirects followed, short timeouts.
     *
     * @param string $url
     * @param array<string, string> $headers
     * @param string $body
     * @param int $timeout
     *
     * @return array<string, mixed>
     */
    public static function curlTransport($url, array $headers, $body, $timeout)
    {
        if (!function_exists('curl_init')) {
            return ['status' => 0, 'body' => '', 'error' => 'The PHP curl extension is missing.', 'retry_after' => 0];
        }
        $lines = [];
        foreach ($headers as $name => $value) {
            $lines[] = $name . ': ' . $value;
        }
        $retryAfter = 0;
        $handle = curl_init($url);
        curl_setopt_array($handle, [
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_CONNECTTIMEOUT => min(self::CONNECT_TIMEOUT, max(1, (int) $timeout)),
            CURLOPT_TIMEOUT => max(1, (int) $timeout),
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_HEADERFUNCTION => function ($curl, $line) use (&$retryAfter) {
                if (stripos($line, 'retry-after:') === 0) {
                    $retryAfter = (int) trim(substr($line, 12));
                }

                return strlen($line);
            },
        ]);
        $response = curl_exec($handle);
        $status = (int) curl_getinfo($handle, CURLINFO_HTTP_CODE);
        $error = $response === false ? curl_error($handle) : '';
        curl_close($handle);

        return [
            'status' => $response === false ? 0 : $status,
            'body' => $response === false ? '' : (string) $response,
            'error' => $error,
            'retry_after' => $retryAfter,
        ];
    }
}
