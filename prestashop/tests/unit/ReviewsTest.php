<?php
use PHPUnit\Framework\TestCase;

require_once dirname(__DIR__) . '/stubs/reviews-store.php';

class ReviewsTest extends TestCase
{
    const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

    /** @return array<string, mixed> one page of the public API, with fields the module does not know */
    public static function apiPage($nextCursor = null)
    {
        return [
            'items' => [
                ['id' => 'rev_1', 'rating' => 5, 'comment' => 'Très beau bol, bien emballé.', 'author' => 'Marie D.',
                    'created_at' => '2026-11-20T10:00:00Z', 'reply' => 'Merci Marie !', 'language' => 'fr',
                    'products' => [['product_id' => '12', 'rating' => 5, 'name' => 'Bol', 'extra' => true], ['product_id' => '13', 'rating' => 4]], ],
                ['id' => 'rev_2', 'rating' => 2, 'comment' => 'Arrivé <b>fêlé</b> & "remplacé".', 'author' => 'Paul M.',
                    'created_at' => '2026-11-22T08:30:00+01:00', 'reply' => null,
                    'products' => [['product_id' => '12-4', 'rating' => 3]], ],
                // an order rating alone: a review of the shop, not of a product
                ['id' => 'rev_3', 'rating' => 1, 'comment' => 'Livraison lente', 'author' => 'Léa B.', 'created_at' => '2026-11-23T08:00:00Z', 'products' => []],
                ['id' => 'rev_4', 'rating' => 4, 'products' => [['product_id' => 'abc', 'rating' => 4], ['product_id' => '14', 'rating' => 9]]],
                'not an item',
            ],
            'next_cursor' => $nextCursor,
            'total' => 4,
        ];
    }

    public function testTablesCreatedAtInstallAndDroppedAtUninstall()
    {
        $sql = implode("\n", RelanceReviewsStore::installSql('ps_', 'InnoDB'));
        $this->assertStringContainsString('CREATE TABLE IF NOT EXISTS `ps_relance_review`', $sql);
        $this->assertStringContainsString('PRIMARY KEY (`id_shop`, `id_product`, `review_id`)', $sql);
        $this->assertStringContainsString('CREATE TABLE IF NOT EXISTS `ps_relance_review_state`', $sql);
        $this->assertStringContainsString('`etag` VARCHAR(255)', $sql);
        $this->assertSame(['DROP TABLE IF EXISTS `ps_relance_review`', 'DROP TABLE IF EXISTS `ps_relance_review_state`'],
            RelanceReviewsStore::uninstallSql('ps_'));
        $upgrade = (string) file_get_contents(dirname(__DIR__, 2) . '/relance/upgrade/upgrade-1.1.0.php');
        $this->assertStringContainsString('function upgrade_module_1_1_0($module)', $upgrade);
        $this->assertStringContainsString('RelanceReviewsStore::installSql', $upgrade);
    }

    public function testRowsKeepOnlyRatedProductsAndIgnoreUnknownFields()
    {
        $rows = RelanceReviewsSync::rows(self::apiPage()['items']);
        $this->assertSame([[12, 'rev_1', 5], [13, 'rev_1', 4], [12, 'rev_2', 3]], array_map(function ($row) {
            return [$row['id_product'], $row['review_id'], $row['rating']];
        }, $rows));
        $this->assertSame('Merci Marie !', $rows[0]['reply']);
        $this->assertSame('', $rows[2]['reply']);
        $this->assertSame('2026-11-22 07:30:00', $rows[2]['created_at'], 'stored in UTC');
        $this->assertSame('Marie D.', $rows[0]['author']);
    }

    public function testSyncFollowsCursorsThenA304KeepsTheCopy()
    {
        $store = new MemoryReviewsStore();
        $calls = [];
        $answers = [
            ['status' => 200, 'etag' => 'W/"v1"', 'body' => json_encode(self::apiPage('c2'))],
            ['status' => 200, 'etag' => '', 'body' => json_encode(['items' => [['id' => 'rev_9', 'author' => 'Zoé R.', 'created_at' => '2026-10-01T00:00:00Z',
                'products' => [['product_id' => 13, 'rating' => 5, 'comment' => 'Parfait']], ]], 'next_cursor' => null])],
            ['status' => 304, 'etag' => 'W/"v1"', 'body' => ''],
        ];
        $transport = function ($url, $headers, $timeout) use (&$calls, &$answers) {
            $calls[] = [$url, $headers];

            return array_shift($answers);
        };
        $sync = new RelanceReviewsSync('https://reviews.example/', 'shp_abc', $store, $transport);
        $first = $sync->run(1, 1000);
        $this->assertSame(['result' => 'updated', 'reviews' => 4, 'error' => ''], $first);
        $this->assertSame('https://reviews.example/public/v1/shops/shp_abc/reviews', $calls[0][0]);
        $this->assertArrayNotHasKey('If-None-Match', $calls[0][1]);
        $this->assertSame('https://reviews.example/public/v1/shops/shp_abc/reviews?cursor=c2', $calls[1][0]);
        $this->assertSame('W/"v1"', $store->states[1]['etag'], 'the first page\'s ETag is kept');
        $this->assertSame('Parfait', $store->rows[1][3]['comment']);

        $second = $sync->run(1, 2000);
        $this->assertSame('not_modified', $second['result']);
        $this->assertSame('W/"v1"', $calls[2][1]['If-None-Match']);
        $this->assertCount(4, $store->rows[1], '304: the copy is kept');
        $this->assertSame(2000, $store->states[1]['checked_at']);
        $this->assertSame(1000, $store->states[1]['synced_at']);
    }

    public function testALongListIsPacedUnderTheRateLimitAndA429IsWaitedOut()
    {
        $store = new MemoryReviewsStore();
        $pauses = [];
        $calls = 0;
        $transport = function ($url, $headers, $timeout) use (&$calls) {
            ++$calls;
            if ($calls === 3) {
                return ['status' => 429, 'retry_after' => 5];
            }
            $next = $calls < 70 ? 'c' . $calls : null;

            return ['status' => 200, 'etag' => '"e"', 'body' => json_encode(['items' => [['id' => 'rev_' . $calls, 'created_at' => '2026-11-01T00:00:00Z',
                'products' => [['product_id' => 12, 'rating' => 5]], ]], 'next_cursor' => $next, ])];
        };
        $sync = new RelanceReviewsSync('https://reviews.example', 'shp_abc', $store, $transport, function ($microseconds) use (&$pauses) {
            $pauses[] = $microseconds;
        });
        $this->assertSame('updated', $sync->run(1, 1000)['result']);
        $this->assertCount(69, $store->rows[1]);
        $this->assertSame(5000000, $pauses[0], 'Retry-After');
        $this->assertCount(1 + 69 - RelanceReviewsSync::PACE_AFTER, $pauses);
    }

    public function testRelanceDownKeepsTheCopyAndTheDisplayGoesOn()
    {
        $store = new MemoryReviewsStore();
        $store->replace(1, RelanceReviewsSync::rows(self::apiPage()['items']), 'W/"v1"', 1000);
        foreach ([['status' => 0, 'error' => 'Connection refused'], ['status' => 503, 'body' => 'down'], ['status' => 200, 'body' => '<html>']] as $answer) {
            $sync = new RelanceReviewsSync('https://reviews.example', 'shp_abc', $store, function () use ($answer) {
                return $answer;
            });
            $result = $sync->run(1, 3000);
            $this->assertSame('error', $result['result']);
            $this->assertCount(3, $store->rows[1]);
            $this->assertSame('W/"v1"', $store->states[1]['etag']);
            $this->assertNotSame('', $store->states[1]['last_error']);
        }
        $this->assertSame('error', (new RelanceReviewsSync('http://127.0.0.1:1', 'x', $store))->run(1, 3000)['result'], 'the real cURL transport');
        $html = $this->renderProduct($store, 12, 1);
        $this->assertStringContainsString('Marie D.', $html, 'the local copy is shown');
    }

    public function testWebhookSignature()
    {
        $body = json_encode(['type' => 'review.published', 'timestamp' => '2026-11-20T10:00:00Z', 'data' => ['review_id' => 'rev_1']]);
        $headers = (new RelanceSigner(self::SECRET))->headers('msg_1', 1700000000, $body);
        $this->assertSame('review.published', RelanceReviewsSync::verifyWebhook(self::SECRET, $headers, $body, 1700000100)['type']);
        $this->assertNull(RelanceReviewsSync::verifyWebhook(self::SECRET, $headers, $body . ' ', 1700000100), 'body changed');
        $this->assertNull(RelanceReviewsSync::verifyWebhook(self::SECRET, $headers, $body, 1700000400), 'too old');
        $this->assertNull(RelanceReviewsSync::verifyWebhook('whsec_' . base64_encode('another key'), $headers, $body, 1700000100), 'other secret');
        $this->assertNull(RelanceReviewsSync::verifyWebhook('', $headers, $body, 1700000100), 'no secret saved');
        $this->assertNull(RelanceReviewsSync::verifyWebhook(self::SECRET, [], $body, 1700000100), 'unsigned');
        $notJson = (new RelanceSigner(self::SECRET))->headers('msg_2', 1700000000, 'x');
        $this->assertNull(RelanceReviewsSync::verifyWebhook(self::SECRET, $notJson, 'x', 1700000000));
    }

    public function testSummaryPaginationAndPageUrls()
    {
        $view = new RelanceReviewsView('fr', 'd/m/Y');
        $summary = $view->summary([5 => 2, 4 => 1, 3 => 1]);
        $this->assertSame(4, $summary['count']);
        $this->assertSame(4.3, $summary['mean']);
        $this->assertSame('4,3', $summary['mean_text']);
        $this->assertSame(86, $summary['percent']);
        $this->assertSame('4.3', (new RelanceReviewsView('en', 'm/d/Y'))->summary([5 => 2, 4 => 1, 3 => 1])['mean_text']);
        $this->assertSame(1, RelanceReviewsView::page('x', 25));
        $this->assertSame(3, RelanceReviewsView::page('9', 25));
        $this->assertSame(2, RelanceReviewsView::page('2', 25));
        $this->assertSame('https://shop.example/fr/12-bol.html?relance_page=2#relance-reviews', RelanceReviewsView::pageUrl('https://shop.example/fr/12-bol.html#x', 2));
        $this->assertSame('https://shop.example/index.php?id_product=12&relance_page=3#relance-reviews', RelanceReviewsView::pageUrl('https://shop.example/index.php?id_product=12&relance_page=2', 3));
        $this->assertSame('https://shop.example/fr/12-bol.html#relance-reviews', RelanceReviewsView::pageUrl('https://shop.example/fr/12-bol.html?relance_page=2', 1));
    }

    public function testJsonLdParsesWithTheRequiredPropertiesAndTheDisplayedValues()
    {
        $store = new MemoryReviewsStore();
        $store->replace(1, RelanceReviewsSync::rows(self::apiPage()['items']), '', 1000);
        $html = $this->renderProduct($store, 12, 1);
        $this->assertSame(1, preg_match_all('#<script type="application/ld\+json">(.*?)</script>#s', $html, $m));
        $ld = json_decode($m[1][0], true);
        $this->assertIsArray($ld, 'the JSON-LD parses');
        $this->assertSame('https://schema.org', $ld['@context']);
        $this->assertSame('Product', $ld['@type']);
        $this->assertSame('Bol <émaillé> & co', $ld['name']);
        $this->assertSame('BOL-12', $ld['sku']);
        $rating = $ld['aggregateRating'];
        $this->assertSame('AggregateRating', $rating['@type']);
        $this->assertSame(4.0, $rating['ratingValue']);
        $this->assertSame(2, $rating['reviewCount']);
        $this->assertSame(5, $rating['bestRating']);
        $this->assertStringContainsString('<span class="relance-reviews-mean">4,0/5</span>', $html, 'the same mean is displayed');
        $this->assertStringContainsString('2 avis', $html, 'the same count is displayed');
        $this->assertCount(2, $ld['review']);
        $this->assertSame(['Review', 'Paul M.', 3, '2026-11-22'], [$ld['review'][0]['@type'], $ld['review'][0]['author']['name'],
            $ld['review'][0]['reviewRating']['ratingValue'], $ld['review'][0]['datePublished'], ]);
        $this->assertSame('Arrivé <b>fêlé</b> & "remplacé".', $ld['review'][0]['reviewBody']);
        $this->assertStringNotContainsString('<b>', $m[1][0], 'no raw tag inside the script element');
    }

    public function testNoReviewsNoMarkupAndNoBlock()
    {
        $this->assertSame('', RelanceReviewsView::jsonLd(['name' => 'Bol'], ['count' => 0, 'mean' => 0], []));
        $html = $this->renderProduct(new MemoryReviewsStore(), 1, 1);
        $this->assertStringNotContainsString('relance-review', $html);
        $this->assertStringNotContainsString('ld+json', $html);
    }

    public function testProductPageListWithRepliesPagesAndEscaping()
    {
        $store = new MemoryReviewsStore();
        $rows = [];
        for ($i = 1; $i <= 12; ++$i) {
            $rows[] = ['id_product' => 7, 'review_id' => 'rev_' . $i, 'rating' => 1 + $i % 5, 'comment' => 'Avis ' . $i,
                'author' => 'Client ' . $i, 'created_at' => sprintf('2026-11-%02d 10:00:00', $i), 'reply' => $i === 12 ? 'Merci <3' : '', ];
        }
        $store->replace(1, $rows, '', 1000);
        $page1 = $this->renderProduct($store, 7, 1);
        $this->assertStringContainsString('<h2 class="h5 relance-reviews-title">Avis clients</h2>', $page1);
        $this->assertStringContainsString('12 avis', $page1);
        $this->assertSame(10, substr_count($page1, '<li class="relance-review"'));
        $this->assertStringContainsString('Réponse de la boutique', $page1);
        $this->assertStringContainsString('Merci &lt;3', $page1);
        $this->assertStringContainsString('<time class="relance-review-date" datetime="2026-11-12">12/11/2026</time>', $page1);
        $this->assertStringContainsString('href="https://shop.example/fr/7-bol.html?relance_page=2#relance-reviews"', $page1);
        $this->assertStringContainsString('<span aria-current="page">1</span>', $page1);
        $page2 = $this->renderProduct($store, 7, 2);
        $this->assertSame(2, substr_count($page2, '<li class="relance-review"'));
        $this->assertStringContainsString('Client 1<', $page2);
        preg_match('#ld\+json">(.*?)</script>#s', $page2, $m);
        $this->assertCount(2, json_decode($m[1], true)['review'], 'the markup carries the reviews shown on this page');

        // minimum rating 4: the count, the mean and the list follow
        $high = $this->renderProduct($store, 7, 1, 4);
        $this->assertStringContainsString('4 avis', $high);
        $this->assertStringNotContainsString('Avis 1<', $high);
    }

    public function testStarsTemplatesInFrench()
    {
        $vars = ['summary' => (new RelanceReviewsView('fr', 'd/m/Y'))->summary([5 => 1]), 'reviews' => [], 'pages' => [], 'json_ld' => '',
            'list_url' => 'https://shop.example/fr/7-bol.html#relance-reviews', ];
        $stars = $this->render('product-stars', $vars);
        $this->assertStringContainsString('style="width: 100%"', $stars);
        $this->assertStringContainsString('<a href="https://shop.example/fr/7-bol.html#relance-reviews" class="relance-reviews-count">1 avis</a>', $stars);
        $this->assertStringNotContainsString('ld+json', $stars);
        $list = $this->render('list-stars', $vars);
        $this->assertStringContainsString('<span class="relance-reviews-count">(1)</span>', $list);
        $vars['summary'] = (new RelanceReviewsView('fr', 'd/m/Y'))->summary([]);
        $this->assertSame('', trim($this->render('list-stars', $vars)));
    }

    /**
     * The product page's two blocks as the module's hook builds them, from the store only.
     */
    private function renderProduct($store, $idProduct, $page, $minRating = 1)
    {
        $view = new RelanceReviewsView('fr', 'd/m/Y');
        $summary = $view->summary($store->distribution(1, $idProduct, $minRating));
        $url = 'https://shop.example/fr/' . $idProduct . '-bol.html';
        $vars = ['summary' => $summary, 'reviews' => [], 'pages' => [], 'json_ld' => '', 'list_url' => RelanceReviewsView::pageUrl($url, 1)];
        $stars = $this->render('product-stars', $vars);
        $page = RelanceReviewsView::page($page, $summary['count']);
        $vars = array_merge($vars, $view->listing($store->page(1, $idProduct, $minRating, $page, RelanceReviewsView::PER_PAGE), $summary['count'], $page, $url));
        $vars['json_ld'] = RelanceReviewsView::jsonLd(['name' => 'Bol <émaillé> & co', 'url' => $url, 'sku' => 'BOL-12'], $summary, $vars['reviews']);

        return $stars . $this->render('product-reviews', $vars);
    }

    /**
     * Renders a hook template with Smarty 4, {l} answering from the French translation file.
     */
    public static function render($template, array $vars)
    {
        if (!is_file('/usr/share/php/smarty4/Smarty.class.php')) {
            self::markTestSkipped('smarty4 is not installed');
        }
        require_once '/usr/share/php/smarty4/Smarty.class.php';
        global $_MODULE;
        include dirname(__DIR__, 2) . '/relance/translations/fr.php';
        $smarty = new Smarty();
        $smarty->setCompileDir(sys_get_temp_dir() . '/relance-smarty-' . getmypid());
        $smarty->registerPlugin('modifier', 'intval', 'intval');
        $smarty->registerPlugin('function', 'l', function ($params) use ($template) {
            global $_MODULE;
            $key = '<{relance}prestashop>' . $template . '_' . md5($params['s']);

            return htmlspecialchars(isset($_MODULE[$key]) ? $_MODULE[$key] : $params['s'], ENT_QUOTES, 'UTF-8');
        });
        $smarty->assign('relance_reviews', $vars);

        return $smarty->fetch(dirname(__DIR__, 2) . '/relance/views/templates/hook/' . $template . '.tpl');
    }
}
