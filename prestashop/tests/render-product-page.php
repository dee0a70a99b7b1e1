<?php
/**
 * Renders the module's product-page hooks with Smarty 4 into a minimal HTML page, from a local
 * copy held in memory (as the cron would have left it): the stars under the name, the list with
 * the shop's replies, and a category list with stars. Used by tests/prestashop/ to open the page
 * in headless Chromium. Usage: php render-product-page.php [language iso, default fr] > page.html
 */
require __DIR__ . '/stubs/prestashop.php';
require __DIR__ . '/stubs/module.php';
require __DIR__ . '/stubs/reviews-store.php';
foreach (glob(dirname(__DIR__) . '/relance/classes/Relance*.php') as $file) {
    require_once $file;
}
require_once dirname(__DIR__) . '/relance/relance.php';
require_once '/usr/share/php/smarty4/Smarty.class.php';

class PageRelance extends Relance
{
    /** @var MemoryReviewsStore */
    public $store;

    protected function reviewsStore()
    {
        return $this->store;
    }
}

$iso = isset($argv[1]) ? $argv[1] : 'fr';
global $_MODULE;
include dirname(__DIR__) . '/relance/translations/' . $iso . '.php';
$context = new Context();
$context->shop = (object) ['id' => 1];
$context->language = (object) ['id' => 1, 'iso_code' => $iso, 'date_format_lite' => $iso === 'en' ? 'm/d/Y' : 'd/m/Y'];
$context->link = new Link();
$smarty = new Smarty();
$smarty->setCompileDir(sys_get_temp_dir() . '/relance-smarty-page-' . getmypid());
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

$items = [
    ['id' => 'rev_1', 'author' => 'Marie D.', 'created_at' => '2026-11-20T10:00:00Z', 'reply' => 'Merci Marie, à bientôt à l\'atelier !',
        'comment' => "Très beau bol, l'émail est encore plus joli qu'en photo.\nBien emballé.", 'products' => [['product_id' => '12', 'rating' => 5], ['product_id' => '13', 'rating' => 5]], ],
    ['id' => 'rev_2', 'author' => 'Paul M.', 'created_at' => '2026-11-18T08:30:00Z', 'reply' => 'Désolés pour ce bol abîmé : le remplaçant est parti le lendemain.',
        'comment' => 'Arrivé fêlé, mais remplacé très vite.', 'products' => [['product_id' => '12', 'rating' => 3]], ],
    ['id' => 'rev_3', 'author' => 'Sophie L.', 'created_at' => '2026-11-15T17:45:00Z', 'reply' => '',
        'comment' => 'Parfait pour le petit-déjeuner.', 'products' => [['product_id' => '12', 'rating' => 4], ['product_id' => '14', 'rating' => 4]], ],
];
$store = new MemoryReviewsStore();
$store->replace(1, RelanceReviewsSync::rows($items), 'W/"demo"', time());
$module = new PageRelance();
$module->store = $store;
$product = function ($id, $name) {
    return new ArrayObject(['id_product' => $id, 'name' => $name, 'reference' => 'BOL-' . $id, 'url' => 'https://shop.example/' . $id . '-bol.html']);
};
$css = (string) file_get_contents(dirname(__DIR__) . '/relance/views/css/reviews.css');
$miniatures = '';
foreach ([12 => 'Bol émaillé bleu', 13 => 'Tasse grès', 14 => 'Assiette plate', 15 => 'Vase'] as $id => $name) {
    $miniatures .= '<article class="miniature" data-id="' . $id . '"><div class="thumb"></div><h3>' . htmlspecialchars($name) . '</h3>'
        . $module->hookDisplayProductListReviews(['product' => $product($id, $name)]) . '<p class="price">24,00 €</p></article>';
}
echo '<!DOCTYPE html><html lang="' . $iso . '"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
    . '<title>Bol émaillé bleu</title><style>'
    . 'body{font-family:"Noto Sans",Arial,sans-serif;color:#232323;max-width:960px;margin:0 auto;padding:24px;line-height:1.5}'
    . '.product{display:flex;gap:32px;flex-wrap:wrap}.image{width:320px;height:320px;background:#e4d5c3;border-radius:4px}'
    . '.relance-stars{color:#f39c12}h1{font-size:1.6rem;margin:0}.price{font-weight:bold;font-size:1.2rem}'
    . '.list{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:16px}.miniature .thumb{height:120px;background:#e4d5c3}'
    . '.miniature h3{font-size:1rem;margin:.5em 0 0}'
    . $css . '</style></head><body>'
    . '<div class="product"><div class="image"></div><div class="info"><h1>Bol émaillé bleu</h1>'
    . $module->hookDisplayProductAdditionalInfo(['product' => $product(12, 'Bol émaillé bleu')])
    . '<p class="price">24,00 €</p></div></div>'
    . $module->hookDisplayFooterProduct(['product' => $product(12, 'Bol émaillé bleu')])
    . '<h2>Dans la même catégorie</h2><div class="list">' . $miniatures . '</div>'
    . '</body></html>' . "\n";
