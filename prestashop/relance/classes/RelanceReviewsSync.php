<?php
/**
 * Relance - refreshes the local copy of the shop's published reviews from Relance's public API,
 * GET /public/v1/shops/{shop_id}/reviews, with If-None-Match: an unchanged list costs a 304.
 *
 * Called by the cron URL and, at once, by the reviews webhook when Relance posts a signed
 * review.published. When Relance does not answer, the copy is left as it is.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceReviewsSync
{
    const TIMEOUT = 10;
    /** pages followed in one refresh, at most (20 reviews a page) */
    const MAX_PAGES = 500;
    /** Relance's public API allows 120 requests a minute from one address: past this many
     * pages, one page every 0.6 s, and a 429 is waited out (Retry-After, at most 60 s) */
    const PACE_AFTER = 60;
    const PACE_MICROSECONDS = 600000;

    /** @var string */
    private $baseUrl;
    /** @var string */
    private $shopId;
    /** @var RelanceReviewsStore|object state(), replace(), saveState() */
    private $store;
    /** @var callable(string, array<string, string>, int): array<string, mixed> */
    private $transport;
    /** @var callable(int): void waits this many microseconds */
    private $pause;

    /**
     * @param string $baseUrl Relance's URL
     * @param string $shopId Relance's shop id
     * @param object $store a RelanceReviewsStore (or a stand-in with the same methods)
     * @param callable|null $transport function ($url, $headers, $timeout) returning ['status' => int
     *                                 (0 on network error), 'body' => string, 'etag' => string,
     *                                 'error' => string, 'retry_after' => int]; cURL by default
     * @param callable|null $pause function ($microseconds); usleep by default
     */
    public function __construct($baseUrl, $shopId, $store, $transport = null, $pause = null)
    {
        $this->pause = $pause !== null ? $pause : 'usleep';
        $this->baseUrl = rtrim(trim((string) $baseUrl), '/');
        $this->shopId = trim((string) $shopId);
        $this->store = $store;
        $this->transport = $transport !== null ? $transport : [__CLASS__, 'curlTransport'];
    }

    /**
     * @param string $baseUrl
     * @param string $shopId
     * @param string $cursor
     *
     * @return string
     */
    public static function reviewsUrl($baseUrl, $shopId, $cursor = '')
    {
        $url = rtrim(trim((string) $baseUrl), '/') . '/public/v1/shops/' . rawurlencode(trim((string) $shopId)) . '/reviews';

        return $cursor !== '' ? $url . '?cursor=' . rawurlencode($cursor) : $url;
    }

    /**
     * One refresh of one shop's copy.
     *
     * @param int $idShop PrestaShop's shop id
     * @param int $now
     *
     * @return array<string, mixed> ['result' => 'updated'|'not_modified'|'error', 'reviews' => int, 'error' => string]
     */
    public function run($idShop, $now)
    {
        $state = $this->store->state($idShop);
        $headers = ['Accept' => 'application/json', 'User-Agent' => 'relance-prestashop'];
        if ((string) $state['etag'] !== '') {
            $headers['If-None-Match'] = (string) $state['etag'];
        }
        $rows = [];
        $etag = '';
        $cursor = '';
        $waits = 0;
        for ($page = 0; $page < self::MAX_PAGES; ++$page) {
            if ($page >= self::PACE_AFTER) {
                call_user_func($this->pause, self::PACE_MICROSECONDS);
            }
            $answer = call_user_func($this->transport, self::reviewsUrl($this->baseUrl, $this->shopId, $cursor), $headers, self::TIMEOUT);
            $answer += ['status' => 0, 'body' => '', 'etag' => '', 'error' => '', 'retry_after' => 0];
            $status = (int) $answer['status'];
            if ($status === 429 && $page > 0 && $waits < 3) {
                ++$waits;
                call_user_func($this->pause, 1000000 * min(60, max(1, (int) $answer['retry_after'])));
                --$page;
                continue;
            }
            if ($page === 0 && $status === 304) {
                $this->store->saveState($idShop, ['checked_at' => (int) $now, 'last_error' => '']);

                return ['result' => 'not_modified', 'reviews' => -1, 'error' => ''];
            }
            $data = $status === 200 ? json_decode((string) $answer['body'], true) : null;
            if (!is_array($data) || !isset($data['items']) || !is_array($data['items'])) {
                $error = $status === 0 ? 'Network error: ' . $answer['error']
                    : 'HTTP ' . $status . ($status === 200 ? ': not a list of reviews' : '');

                return $this->fail($idShop, $now, $error);
            }
            if ($page === 0) {
                $etag = (string) $answer['etag'];
                // The later pages are fetched whole.
                unset($headers['If-None-Match']);
            }
            $rows = array_merge($rows, self::rows($data['items']));
            $cursor = isset($data['next_cursor']) && is_scalar($data['next_cursor']) ? (string) $data['next_cursor'] : '';
            if ($cursor === '') {
                break;
            }
        }
        if ($cursor !== '') {
            return $this->fail($idShop, $now, 'More than ' . self::MAX_PAGES . ' pages of reviews.');
        }
        if (!$this->store->replace($idShop, $rows, $etag, $now)) {
            return ['result' => 'error', 'reviews' => count($rows), 'error' => 'The local copy could not be written.'];
        }

        return ['result' => 'updated', 'reviews' => count($rows), 'error' => ''];
    }

    /**
     * The rows of the local copy from the API's items: one per review and rated product.
     * Unknown fields are ignored; a product without a rating 1-5 or a numeric id is skipped.
     *
     * @param array<int, mixed> $items
     *
     * @return array<int, array<string, mixed>>
     */
    public static function rows(array $items)
    {
        $rows = [];
        foreach ($items as $item) {
            if (!is_array($item) || !isset($item['id']) || !is_scalar($item['id']) || empty($item['products']) || !is_array($item['products'])) {
                continue;
            }
            $time = isset($item['created_at']) && is_string($item['created_at']) ? strtotime($item['created_at']) : false;
            $reply = isset($item['reply']) ? $item['reply'] : '';
            if (is_array($reply)) {
                // {"body": ..., "created_at": ...} or {"text": ...}
                $reply = isset($reply['body']) ? $reply['body'] : (isset($reply['text']) ? $reply['text'] : '');
            }
            foreach ($item['products'] as $product) {
                if (!is_array($product) || !isset($product['product_id'], $product['rating']) || !is_scalar($product['product_id'])) {
                    continue;
                }
                $rating = (int) $product['rating'];
                if (!preg_match('/^([0-9]+)/', (string) $product['product_id'], $id) || (int) $id[1] <= 0 || $rating < 1 || $rating > 5) {
                    continue;
                }
                $comment = isset($product['comment']) && is_string($product['comment']) && $product['comment'] !== ''
                    ? $product['comment'] : (isset($item['comment']) && is_scalar($item['comment']) ? (string) $item['comment'] : '');
                $rows[] = [
                    'id_product' => (int) $id[1],
                    'review_id' => substr((string) $item['id'], 0, 64),
                    'rating' => $rating,
                    'comment' => $comment,
                    'author' => isset($item['author']) && is_scalar($item['author']) ? substr((string) $item['author'], 0, 128) : '',
                    'created_at' => gmdate('Y-m-d H:i:s', $time !== false ? $time : 0),
                    'reply' => is_scalar($reply) ? (string) $reply : '',
                ];
            }
        }

        return $rows;
    }

    /**
     * Checks a webhook Relance posted to the module (Standard Webhooks).
     *
     * @param string $secret the reviews webhook secret, whsec_...
     * @param array<string, string> $headers
     * @param string $body
     * @param int $now
     *
     * @return array<string, mixed>|null the event, null when the signature or the body is not valid
     */
    public static function verifyWebhook($secret, array $headers, $body, $now)
    {
        if (!RelanceSigner::isValidSecret($secret)) {
            return null;
        }
        $signer = new RelanceSigner($secret);
        if (!$signer->verify($headers, (string) $body, $now)) {
            return null;
        }
        $event = json_decode((string) $body, true);

        return is_array($event) && isset($event['type']) && is_string($event['type']) ? $event : null;
    }

    /**
     * GET with cURL: no redirects followed, short timeouts.
     *
     * @param string $url
     * @param array<string, string> $headers
     * @param int $timeout
     *
     * @return array<string, mixed>
     */
    public static function curlTransport($url, array $headers, $timeout)
    {
        if (!function_exists('curl_init')) {
            return ['status' => 0, 'body' => '', 'etag' => '', 'error' => 'The PHP curl extension is missing.', 'retry_after' => 0];
        }
        $lines = [];
        foreach ($headers as $name => $value) {
            $lines[] = $name . ': ' . $value;
        }
        $etag = '';
        $retryAfter = 0;
        $handle = curl_init($url);
        curl_setopt_array($handle, [
            CURLOPT_HTTPGET => true,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_CONNECTTIMEOUT => min(RelanceSender::CONNECT_TIMEOUT, max(1, (int) $timeout)),
            CURLOPT_TIMEOUT => max(1, (int) $timeout),
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_HEADERFUNCTION => function ($curl, $line) use (&$etag, &$retryAfter) {
                if (stripos($line, 'etag:') === 0) {
                    $etag = trim(substr($line, 5));
                } elseif (stripos($line, 'retry-after:') === 0) {
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
            'etag' => $etag,
            'error' => $error,
            'retry_after' => $retryAfter,
        ];
    }

    /**
     * @param int $idShop
     * @param int $now
     * @param string $error
     *
     * @return array<string, mixed>
     */
    private function fail($idShop, $now, $error)
    {
        // The copy is kept: product pages go on showing it.
        $this->store->saveState($idShop, ['checked_at' => (int) $now, 'last_error' => $error]);

        return ['result' => 'error', 'reviews' => -1, 'error' => $error];
    }
}
