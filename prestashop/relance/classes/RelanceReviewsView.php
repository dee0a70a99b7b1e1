<?php
/**
 * Relance - what the product-page templates show, from the local copy (no database, no network
 * here: the module passes the rows in). The JSON-LD carries exactly the values displayed.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceReviewsView
{
    const PER_PAGE = 10;
    const PAGE_PARAM = 'relance_page';

    /** @var bool decimal comma (fr, it, es, de) */
    private $decimalComma;
    /** @var string PHP date() format of the shop's language */
    private $dateFormat;

    /**
     * @param string $languageIso
     * @param string $dateFormat e.g. "d/m/Y" (the language's date_format_lite)
     */
    public function __construct($languageIso, $dateFormat)
    {
        $this->decimalComma = in_array(strtolower((string) $languageIso), ['fr', 'it', 'es', 'de'], true);
        $this->dateFormat = (string) $dateFormat !== '' ? (string) $dateFormat : 'Y-m-d';
    }

    /**
     * @param array<int, int> $distribution rating (1-5) => count, of the reviews shown
     *
     * @return array<string, mixed> count, mean (one decimal, as displayed), mean_text, percent, distribution
     */
    public function summary(array $distribution)
    {
        $count = 0;
        $sum = 0;
        $rows = [];
        for ($rating = 5; $rating >= 1; --$rating) {
            $n = isset($distribution[$rating]) ? (int) $distribution[$rating] : 0;
            $count += $n;
            $sum += $n * $rating;
            $rows[] = ['rating' => $rating, 'count' => $n];
        }
        foreach ($rows as $i => $row) {
            $rows[$i]['percent'] = $count > 0 ? (int) round(100 * $row['count'] / $count) : 0;
        }
        $mean = $count > 0 ? round($sum / $count, 1) : 0.0;

        return [
            'count' => $count,
            'mean' => $mean,
            'mean_text' => $this->number($mean),
            'percent' => self::percent($mean),
            'distribution' => $rows,
        ];
    }

    /**
     * The list: one page of reviews and the links to the others.
     *
     * @param array<int, array<string, mixed>> $rows RelanceReviewsStore::page
     * @param int $count reviews shown in all
     * @param int $page
     * @param string $productUrl
     *
     * @return array<string, mixed> reviews, pages, page, page_count
     */
    public function listing(array $rows, $count, $page, $productUrl)
    {
        $reviews = [];
        foreach ($rows as $row) {
            $time = strtotime((string) $row['created_at'] . ' UTC');
            $reviews[] = [
                'id' => (string) $row['review_id'],
                'rating' => (int) $row['rating'],
                'percent' => self::percent((int) $row['rating']),
                'author' => (string) $row['author'],
                'date' => $time !== false ? date($this->dateFormat, $time) : '',
                'date_iso' => $time !== false ? gmdate('Y-m-d', $time) : '',
                'comment' => (string) $row['comment'],
                'reply' => (string) $row['reply'],
            ];
        }
        $pageCount = max(1, (int) ceil((int) $count / self::PER_PAGE));
        $pages = [];
        for ($i = 1; $i <= $pageCount && $pageCount > 1; ++$i) {
            $pages[] = ['number' => $i, 'url' => self::pageUrl($productUrl, $i), 'current' => $i === (int) $page];
        }

        return ['reviews' => $reviews, 'pages' => $pages, 'page' => (int) $page, 'page_count' => $pageCount];
    }

    /**
     * The requested page, within bounds.
     *
     * @param mixed $value the query parameter
     * @param int $count
     *
     * @return int
     */
    public static function page($value, $count)
    {
        $page = is_scalar($value) && preg_match('/^[0-9]{1,6}$/', (string) $value) ? (int) $value : 1;

        return min(max(1, $page), max(1, (int) ceil((int) $count / self::PER_PAGE)));
    }

    /**
     * schema.org Product with its AggregateRating and the Review items shown, as JSON-LD;
     * '' when there is no review to show (Google: no rating markup without visible reviews).
     *
     * @param array<string, mixed> $product name, url, sku (optional), image (optional)
     * @param array<string, mixed> $summary self::summary
     * @param array<int, array<string, mixed>> $reviews self::listing's reviews ([] when the list is not shown)
     *
     * @return string
     */
    public static function jsonLd(array $product, array $summary, array $reviews)
    {
        if ((int) $summary['count'] <= 0 || !isset($product['name']) || (string) $product['name'] === '') {
            return '';
        }
        $data = [
            '@context' => 'https://schema.org',
            '@type' => 'Product',
            'name' => (string) $product['name'],
        ];
        foreach (['url', 'sku', 'image'] as $key) {
            if (isset($product[$key]) && (string) $product[$key] !== '') {
                $data[$key] = (string) $product[$key];
            }
        }
        $data['aggregateRating'] = [
            '@type' => 'AggregateRating',
            'ratingValue' => (float) $summary['mean'],
            'reviewCount' => (int) $summary['count'],
            'bestRating' => 5,
            'worstRating' => 1,
        ];
        foreach ($reviews as $review) {
            $item = [
                '@type' => 'Review',
                'reviewRating' => ['@type' => 'Rating', 'ratingValue' => (int) $review['rating'], 'bestRating' => 5, 'worstRating' => 1],
                'author' => ['@type' => 'Person', 'name' => (string) $review['author'] !== '' ? (string) $review['author'] : 'Anonymous'],
            ];
            if ($review['date_iso'] !== '') {
                $item['datePublished'] = $review['date_iso'];
            }
            if ($review['comment'] !== '') {
                $item['reviewBody'] = $review['comment'];
            }
            $data['review'][] = $item;
        }

        // Safe inside <script>: no "<", ">" or "&" left as such.
        return (string) json_encode($data, JSON_HEX_TAG | JSON_HEX_AMP | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION);
    }

    /**
     * @param string $productUrl
     * @param int $page
     *
     * @return string
     */
    public static function pageUrl($productUrl, $page)
    {
        $url = preg_replace('/#.*$/', '', (string) $productUrl);
        $url = preg_replace('/([?&])' . self::PAGE_PARAM . '=[^&]*(&|$)/', '$1', $url);
        $url = rtrim($url, '?&');
        if ((int) $page > 1) {
            $url .= (strpos($url, '?') === false ? '?' : '&') . self::PAGE_PARAM . '=' . (int) $page;
        }

        return $url . '#relance-reviews';
    }

    /**
     * @param float|int $rating
     *
     * @return int width of the filled stars, 0-100
     */
    private static function percent($rating)
    {
        return (int) round(max(0, min(5, (float) $rating)) * 20);
    }

    /**
     * @param float $value
     *
     * @return string one decimal, in the language's notation
     */
    private function number($value)
    {
        return number_format((float) $value, 1, $this->decimalComma ? ',' : '.', '');
    }
}
