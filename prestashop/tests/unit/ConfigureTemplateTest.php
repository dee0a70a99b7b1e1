<?php
use PHPUnit\Framework\TestCase;

/**
 * Renders the configuration page with Debian's Smarty 4 (PrestaShop 8 renders with Smarty 4),
 * with {l} answering from the module's French translation file as PrestaShop does.
 */
class ConfigureTemplateTest extends TestCase
{
    private function render(array $vars)
    {
        if (!is_file('/usr/share/php/smarty4/Smarty.class.php')) {
            $this->markTestSkipped('smarty4 is not installed');
        }
        require_once '/usr/share/php/smarty4/Smarty.class.php';
        global $_MODULE;
        include dirname(__DIR__, 2) . '/relance/translations/fr.php';
        $smarty = new Smarty();
        $smarty->setCompileDir(sys_get_temp_dir() . '/relance-smarty-' . getmypid());
        // PrestaShop registers this modifier on its Smarty too.
        $smarty->registerPlugin('modifier', 'intval', 'intval');
        $smarty->registerPlugin('function', 'l', function ($params) {
            global $_MODULE;
            $key = '<{relance}prestashop>configure_' . md5($params['s']);

            return htmlspecialchars(isset($_MODULE[$key]) ? $_MODULE[$key] : $params['s'], ENT_QUOTES, 'UTF-8');
        });
        $smarty->assign('relance', $vars + [
            'action' => 'index.php?controller=AdminModules&configure=relance&token=t&a=1', 'multistore_all' => false, 'notices' => [],
            'url' => '', 'shop_id' => '', 'secret_set' => false, 'all_states' => true, 'states' => [],
            'counts' => ['pending' => 0, 'failed' => 0], 'failed' => [], 'last_success' => '', 'last_error' => null,
            'last_test' => null, 'cron_url' => 'https://shop.example/module/relance/cron?token=abc',
            'reviews' => ['show_stars' => true, 'show_list' => true, 'show_in_lists' => false, 'min_rating' => 1, 'secret_set' => false,
                'webhook_url' => 'https://shop.example/module/relance/reviews', 'synced_at' => '', 'last_error' => '', ],
        ]);

        return $smarty->fetch(dirname(__DIR__, 2) . '/relance/views/templates/admin/configure.tpl');
    }

    public function testConfiguredPageInFrenchWithStatusAndEscaping()
    {
        $html = $this->render([
            'url' => 'https://reviews.example', 'shop_id' => 'shp_<b>', 'secret_set' => true, 'all_states' => false,
            'states' => [['id' => 5, 'name' => 'Livré', 'checked' => true], ['id' => 6, 'name' => 'Annulé', 'checked' => false]],
            'counts' => ['pending' => 3, 'failed' => 1],
            'failed' => [['event_type' => 'order.status_changed', 'event_key' => 'order_history:9', 'date_add' => '2026-11-20 10:00:00', 'last_error' => 'HTTP 422: bad']],
            'last_test' => ['date' => '2026-11-20 10:00:00', 'ok' => true, 'answer' => 'HTTP 200 {"status":"pong"}'],
            'notices' => [['type' => 'error', 'text' => '<script>x</script>']],
        ]);
        file_put_contents(sys_get_temp_dir() . '/relance-configure.html', $html);
        $this->assertStringContainsString('Connexion à Relance', $html);
        $this->assertStringContainsString('value="shp_&lt;b&gt;"', $html);
        $this->assertStringNotContainsString('<script>x</script>', $html);
        $this->assertStringContainsString('Un secret est enregistré', $html);
        $this->assertMatchesRegularExpression('#name="RELANCE_STATES\[\]" value="5" checked> Livré#', $html);
        $this->assertMatchesRegularExpression('#name="RELANCE_STATES\[\]" value="6"> Annulé#', $html);
        $this->assertStringContainsString('<dd id="relance-pending">3</dd>', $html);
        $this->assertStringContainsString('HTTP 422: bad', $html);
        $this->assertStringContainsString('name="submitRelanceTest"', $html);
        $this->assertStringContainsString('HTTP 200 {&quot;status&quot;:&quot;pong&quot;}', $html);
        $this->assertStringContainsString("*/5 * * * * curl -fsS 'https://shop.example/module/relance/cron?token=abc'", $html);
        $this->assertStringContainsString('action="index.php?controller=AdminModules&amp;configure=relance&amp;token=t&amp;a=1"', $html);
    }

    public function testUnconfiguredPage()
    {
        $html = $this->render([]);
        $this->assertStringContainsString('Jamais', $html);
        $this->assertStringNotContainsString('Renvoyer', $html, 'no refused events, no retry button');
        $this->assertStringContainsString('name="RELANCE_ALL_STATES" value="1" checked', $html);
    }

    public function testReviewSettingsWithTheFrenchLawNextToTheMinimumRating()
    {
        $html = $this->render([]);
        $this->assertStringContainsString('name="RELANCE_REVIEWS_SHOW_STARS" value="1" checked', $html);
        $this->assertStringContainsString('name="RELANCE_REVIEWS_SHOW_IN_LISTS" value="1">', $html);
        $this->assertMatchesRegularExpression('#<option value="1" selected>Tous les avis \(recommandé\)</option>#', $html);
        $select = strpos($html, 'id="relance-min-rating"');
        $warning = strpos($html, 'id="relance-min-rating-warning"');
        $this->assertNotFalse($select);
        $this->assertNotFalse($warning);
        $this->assertLessThan(600, $warning - $select, 'the warning is next to the setting');
        $this->assertStringContainsString('En France, masquer les avis négatifs est illégal', $html);
        $this->assertStringContainsString('<code>https://shop.example/module/relance/reviews</code>', $html);
    }
}
