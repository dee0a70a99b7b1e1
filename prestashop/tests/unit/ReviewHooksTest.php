<?php
use PHPUnit\Framework\TestCase;

require_once dirname(__DIR__) . '/stubs/module.php';
require_once __DIR__ . '/ReviewsTest.php';
require_once dirname(__DIR__, 2) . '/relance/relance.php';

/**
 * The three product hooks of relance.php, with the local copy in memory: the settings (where,
 * minimum rating), the product given as a lazy array, and a product page that never calls Relance.
 */
class ReviewHooksTest extends TestCase
{
    protected function setUp(): void
    {
        if (!is_file('/usr/share/php/smarty4/Smarty.class.php')) {
            $this->markTestSkipped('smarty4 is not installed');
        }
        require_once '/usr/share/php/smarty4/Smarty.class.php';
        global $_MODULE;
        include dirname(__DIR__, 2) . '/relance/translations/fr.php';
        $context = new Context();
        $context->shop = (object) ['id' => 1];
        $context->language = (object) ['id' => 1, 'iso_code' => 'fr', 'date_format_lite' => 'd/m/Y'];
        $context->link = new Link();
        $smarty = new Smarty();
        $smarty->setCompileDir(sys_get_temp_dir() . '/relance-smarty-' . getmypid());
        $smarty->registerPlugin('modifier', 'intval', 'intval');
        $smarty->registerPlugin('function', 'l', function ($params, $template) {
            global $_MODULE;
            $key = '<{relance}prestashop>' . basename($template->source->filepath, '.tpl') . '_' . md5($params['s']);

            return htmlspecialchars(isset($_MODULE[$key]) ? $_MODULE[$key] : $params['s'], ENT_QUOTES, 'UTF-8');
        });
        $context->smarty = $smarty;
        Context::$current = $context;
        Configuration::$values = ['RELANCE_REVIEWS_SHOW_STARS' => '1', 'RELANCE_REVIEWS_SHOW_LIST' => '1',
            'RELANCE_REVIEWS_SHOW_IN_LISTS' => '1', 'RELANCE_REVIEWS_MIN_RATING' => '1', ];
        Tools::$query = [];
        PrestaShopLogger::$logs = [];
    }

    private function module()
    {
        $store = new MemoryReviewsStore();
        $store->replace(1, RelanceReviewsSync::rows(ReviewsTest::apiPage()['items']), 'W/"v1"', 1000);

        return new TestRelance($store);
    }

    private static function product($id)
    {
        return new ArrayObject(['id_product' => $id, 'name' => 'Bol émaillé', 'reference' => 'BOL-12', 'url' => 'https://shop.example/fr/12-bol.html']);
    }

    public function testTheThreePlaces()
    {
        $module = $this->module();
        $stars = $module->hookDisplayProductAdditionalInfo(['product' => self::product(12)]);
        $this->assertStringContainsString('<span class="relance-reviews-mean">4,0/5</span>', $stars);
        $this->assertStringContainsString('href="https://shop.example/fr/12-bol.html#relance-reviews"', $stars);
        $this->assertStringNotContainsString('ld+json', $stars, 'the list carries the markup');
        $list = $module->hookDisplayFooterProduct(['product' => self::product(12), 'category' => null]);
        $this->assertStringContainsString('Marie D.', $list);
        $this->assertStringContainsString('Merci Marie !', $list);
        preg_match('#ld\+json">(.*?)</script>#s', $list, $m);
        $ld = json_decode($m[1], true);
        $this->assertSame(['Bol émaillé', 'BOL-12', 4.0, 2], [$ld['name'], $ld['sku'], $ld['aggregateRating']['ratingValue'], $ld['aggregateRating']['reviewCount']]);
        $this->assertStringContainsString('(1)', $module->hookDisplayProductListReviews(['product' => self::product(13)]));
        $this->assertSame('', $module->hookDisplayProductListReviews(['product' => self::product(99)]), 'no reviews, nothing');
        $this->assertSame([], PrestaShopLogger::$logs);
    }

    public function testSettings()
    {
        $module = $this->module();
        Configuration::$values['RELANCE_REVIEWS_SHOW_LIST'] = '0';
        Configuration::$values['RELANCE_REVIEWS_SHOW_IN_LISTS'] = '0';
        $this->assertSame('', $module->hookDisplayFooterProduct(['product' => self::product(12)]));
        $this->assertSame('', $module->hookDisplayProductListReviews(['product' => self::product(12)]));
        $stars = $module->hookDisplayProductAdditionalInfo(['product' => self::product(12)]);
        $this->assertStringNotContainsString('<a href', $stars, 'no link to a hidden list');
        preg_match('#ld\+json">(.*?)</script>#s', $stars, $m);
        $ld = json_decode($m[1], true);
        $this->assertSame(4.0, $ld['aggregateRating']['ratingValue'], 'without the list, the stars carry the rating');
        $this->assertArrayNotHasKey('review', $ld);

        Configuration::$values['RELANCE_REVIEWS_MIN_RATING'] = '4';
        $stars = $module->hookDisplayProductAdditionalInfo(['product' => self::product(12)]);
        $this->assertStringContainsString('5,0/5', $stars);
        $this->assertStringContainsString('1 avis', $stars);
    }

    public function testPageParameter()
    {
        Tools::$query = ['relance_page' => '7'];
        $list = $this->module()->hookDisplayFooterProduct(['product' => self::product(12)]);
        $this->assertStringContainsString('Marie D.', $list, 'a page past the end shows the last one');
    }
}

class TestRelance extends Relance
{
    private $store;

    public function __construct($store)
    {
        parent::__construct();
        $this->store = $store;
    }

    protected function reviewsStore()
    {
        return $this->store;
    }
}
