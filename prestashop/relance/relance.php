<?php
/**
 * Relance - sends signed order events to a Relance server, which e-mails review requests.
 *
 * Hooks never talk to the network: they write the event to the outbox and return. The events
 * are sent at the end of the request (after the response is flushed where PHP-FPM allows it)
 * and by the cron front controller, with back-off, until Relance answers 2xx.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

require_once __DIR__ . '/classes/RelanceSigner.php';
require_once __DIR__ . '/classes/RelancePayloadBuilder.php';
require_once __DIR__ . '/classes/RelanceSender.php';
require_once __DIR__ . '/classes/RelanceOutbox.php';
require_once __DIR__ . '/classes/RelanceReviewsStore.php';
require_once __DIR__ . '/classes/RelanceReviewsSync.php';
require_once __DIR__ . '/classes/RelanceReviewsView.php';

class Relance extends Module
{
    const URL = 'RELANCE_URL';
    const SHOP_ID = 'RELANCE_SHOP_ID';
    const SECRET = 'RELANCE_SECRET';
    /** JSON list of order-state ids, or "all" */
    const STATES = 'RELANCE_STATES';
    const LAST_SUCCESS = 'RELANCE_LAST_SUCCESS';
    const LAST_ERROR = 'RELANCE_LAST_ERROR';
    const LAST_TEST = 'RELANCE_LAST_TEST';
    /** global: the cron URL's token */
    const CRON_TOKEN = 'RELANCE_CRON_TOKEN';
    /** the secret of the outgoing webhook Relance posts review.published to */
    const REVIEWS_SECRET = 'RELANCE_REVIEWS_SECRET';
    const SHOW_STARS = 'RELANCE_REVIEWS_SHOW_STARS';
    const SHOW_LIST = 'RELANCE_REVIEWS_SHOW_LIST';
    const SHOW_IN_LISTS = 'RELANCE_REVIEWS_SHOW_IN_LISTS';
    /** 1 (all, the default) to 5 */
    const MIN_RATING = 'RELANCE_REVIEWS_MIN_RATING';

    /** events sent at the end of one request, at most */
    const FLUSH_LIMIT = 5;

    const HOOKS = [
        'actionOrderHistoryAddAfter',
        'actionObjectOrderReturnAddAfter',
        'actionOrderReturn',
        'actionObjectOrderStateAddAfter',
        'actionObjectOrderStateUpdateAfter',
    ];

    const REVIEW_HOOKS = [
        'displayProductAdditionalInfo',
        'displayFooterProduct',
        'displayProductListReviews',
        'actionFrontControllerSetMedia',
    ];

    /** @var array<int, string> event keys written during this request */
    private $written = [];

    public function __construct()
    {
        $this->name = 'relance';
        $this->tab = 'emailing';
        $this->version = '1.1.0';
        $this->author = 'Relance';
        $this->need_instance = 0;
        $this->bootstrap = true;
        $this->ps_versions_compliancy = ['min' => '1.7.8.0', 'max' => _PS_VERSION_];

        parent::__construct();

        $this->displayName = $this->l('Relance review requests');
        $this->description = $this->l('Sends signed order events to Relance, which e-mails review requests after delivery.');
        $this->confirmUninstall = $this->l('Events not sent yet will be lost. Uninstall?');
    }

    /**
     * @return bool
     */
    public function install()
    {
        if (Shop::isFeatureActive()) {
            Shop::setContext(Shop::CONTEXT_ALL);
        }
        $installed = parent::install()
            && Db::getInstance()->execute(RelanceOutbox::installSql(_DB_PREFIX_, _MYSQL_ENGINE_))
            && RelanceReviewsStore::executeAll(RelanceReviewsStore::installSql(_DB_PREFIX_, _MYSQL_ENGINE_))
            && $this->registerHook(self::HOOKS)
            && $this->registerHook(self::REVIEW_HOOKS)
            && $this->installReviewDefaults()
            && Configuration::updateGlobalValue(self::CRON_TOKEN, bin2hex(random_bytes(16)))
            && Configuration::updateValue(self::STATES, 'all');
        if ($installed) {
            // Nothing is sent before the merchant enters the URL, shop id and secret; for a
            // re-installation that kept them, the catalogue goes out at once.
            $this->queueOrderStatesForAllShops();
        }

        return $installed;
    }

    /**
     * @return bool
     */
    public function uninstall()
    {
        $keys = [self::URL, self::SHOP_ID, self::SECRET, self::STATES, self::LAST_SUCCESS, self::LAST_ERROR,
            self::LAST_TEST, self::CRON_TOKEN, self::REVIEWS_SECRET, self::SHOW_STARS, self::SHOW_LIST,
            self::SHOW_IN_LISTS, self::MIN_RATING, ];
        foreach ($keys as $key) {
            Configuration::deleteByName($key);
        }

        return Db::getInstance()->execute(RelanceOutbox::uninstallSql(_DB_PREFIX_))
            && RelanceReviewsStore::executeAll(RelanceReviewsStore::uninstallSql(_DB_PREFIX_))
            && parent::uninstall();
    }

    /**
     * Reviews shown in the three places, all ratings (hiding bad reviews is unlawful in France).
     *
     * @return bool
     */
    public function installReviewDefaults()
    {
        return Configuration::updateValue(self::SHOW_STARS, 1)
            && Configuration::updateValue(self::SHOW_LIST, 1)
            && Configuration::updateValue(self::SHOW_IN_LISTS, 1)
            && Configuration::updateValue(self::MIN_RATING, 1);
    }

    /**
     * Refreshes the local copy of every configured shop's reviews (the cron URL).
     *
     * @return array<int, array<string, mixed>> id_shop => result
     */
    public function refreshAllReviews()
    {
        // A first copy of a large shop is paced under the public API's rate limit.
        @set_time_limit(600);
        $results = [];
        foreach (Shop::getShops(true, null, true) as $idShop) {
            if ($this->isConfigured((int) $idShop)) {
                $results[(int) $idShop] = $this->refreshReviews((int) $idShop);
            }
        }

        return $results;
    }

    /**
     * @param int $idShop
     *
     * @return array<string, mixed> RelanceReviewsSync::run's answer
     */
    public function refreshReviews($idShop)
    {
        try {
            $sync = new RelanceReviewsSync($this->config(self::URL, $idShop), $this->config(self::SHOP_ID, $idShop), new RelanceReviewsStore());
            $result = $sync->run($idShop, time());
        } catch (Throwable $e) {
            $result = ['result' => 'error', 'reviews' => -1, 'error' => $e->getMessage()];
        }
        if ($result['result'] === 'error') {
            PrestaShopLogger::addLog('Relance: reviews not refreshed: ' . $result['error'], 2, null, 'Relance', 0, false);
        }

        return $result;
    }

    /**
     * @param int $idShop
     *
     * @return string the reviews webhook secret
     */
    public function reviewsSecret($idShop)
    {
        return $this->config(self::REVIEWS_SECRET, $idShop);
    }

    /**
     * @param array<string, mixed> $params
     */
    public function hookActionFrontControllerSetMedia($params)
    {
        if ($this->context->controller instanceof FrontController && method_exists($this->context->controller, 'registerStylesheet')) {
            $this->context->controller->registerStylesheet('modules-relance-reviews', 'modules/' . $this->name . '/views/css/reviews.css', ['media' => 'all', 'priority' => 150]);
        }
    }

    /**
     * Stars and count on the product page.
     *
     * @param array<string, mixed> $params ['product' => the product (lazy array)]
     *
     * @return string
     */
    public function hookDisplayProductAdditionalInfo($params)
    {
        return $this->renderReviews($params, self::SHOW_STARS, 'product-stars.tpl');
    }

    /**
     * The list of reviews with the merchant's replies.
     *
     * @param array<string, mixed> $params ['product' => ..., 'category' => ...]
     *
     * @return string
     */
    public function hookDisplayFooterProduct($params)
    {
        return $this->renderReviews($params, self::SHOW_LIST, 'product-reviews.tpl');
    }

    /**
     * Stars in category lists and search results.
     *
     * @param array<string, mixed> $params ['product' => the listing's product]
     *
     * @return string
     */
    public function hookDisplayProductListReviews($params)
    {
        return $this->renderReviews($params, self::SHOW_IN_LISTS, 'list-stars.tpl');
    }

    /**
     * @param array<string, mixed> $params
     * @param string $setting
     * @param string $template
     *
     * @return string
     */
    private function renderReviews($params, $setting, $template)
    {
        try {
            $idShop = (int) $this->context->shop->id;
            $product = isset($params['product']) ? $params['product'] : null;
            $idProduct = (int) self::productField($product, ['id_product', 'id']);
            if ($idProduct <= 0 || !(int) $this->config($setting, $idShop)) {
                return '';
            }
            $minRating = min(5, max(1, (int) $this->config(self::MIN_RATING, $idShop)));
            $store = $this->reviewsStore();
            $language = $this->context->language;
            $view = new RelanceReviewsView((string) $language->iso_code, (string) $language->date_format_lite);
            $summary = $view->summary($store->distribution($idShop, $idProduct, $minRating));
            if ($summary['count'] <= 0) {
                return '';
            }
            $url = (string) self::productField($product, ['url', 'link']);
            if ($url === '') {
                $url = (string) $this->context->link->getProductLink($idProduct);
            }
            $listShown = (bool) (int) $this->config(self::SHOW_LIST, $idShop);
            $vars = ['summary' => $summary, 'reviews' => [], 'pages' => [], 'json_ld' => '',
                'list_url' => $listShown ? RelanceReviewsView::pageUrl($url, 1) : '', ];
            $productData = ['name' => (string) self::productField($product, ['name']), 'url' => $url,
                'sku' => (string) self::productField($product, ['reference']), ];
            if ($template === 'product-reviews.tpl') {
                $page = RelanceReviewsView::page(Tools::getValue(RelanceReviewsView::PAGE_PARAM), $summary['count']);
                $vars = array_merge($vars, $view->listing(
                    $store->page($idShop, $idProduct, $minRating, $page, RelanceReviewsView::PER_PAGE),
                    $summary['count'],
                    $page,
                    $url
                ));
                $vars['json_ld'] = RelanceReviewsView::jsonLd($productData, $summary, $vars['reviews']);
            } elseif ($template === 'product-stars.tpl' && !$listShown) {
                // The list carries the markup when it is shown; otherwise the stars carry the rating.
                $vars['json_ld'] = RelanceReviewsView::jsonLd($productData, $summary, []);
            }
            $this->context->smarty->assign('relance_reviews', $vars);

            return $this->display(__FILE__, 'views/templates/hook/' . $template);
        } catch (Throwable $e) {
            PrestaShopLogger::addLog('Relance: reviews not shown: ' . $e->getMessage(), 2, null, 'Relance', 0, true);

            return '';
        }
    }

    /**
     * @return RelanceReviewsStore
     */
    protected function reviewsStore()
    {
        return new RelanceReviewsStore();
    }

    /**
     * @param mixed $product an array, a lazy array (ArrayAccess) or a Product
     * @param array<int, string> $names the first one set is returned
     *
     * @return mixed '' when none
     */
    private static function productField($product, array $names)
    {
        foreach ($names as $name) {
            if ((is_array($product) || $product instanceof ArrayAccess) && isset($product[$name]) && is_scalar($product[$name])) {
                return $product[$name];
            }
            if (is_object($product) && !($product instanceof ArrayAccess) && isset($product->$name) && is_scalar($product->$name)) {
                return $product->$name;
            }
        }

        return '';
    }

    /**
     * A new order-history row: the order.status_changed event.
     *
     * @param array<string, mixed> $params ['order_history' => OrderHistory]
     */
    public function hookActionOrderHistoryAddAfter($params)
    {
        try {
            if (empty($params['order_history']) || !Validate::isLoadedObject($params['order_history'])) {
                return;
            }
            $history = $params['order_history'];
            $order = new Order((int) $history->id_order);
            $idShop = (int) $order->id_shop;
            if (!$this->isConfigured($idShop) || !$this->sendsState($idShop, (int) $history->id_order_state)) {
                return;
            }
            $payload = $this->builder()->orderStatusChanged(
                $history,
                $this->previousStateId((int) $history->id_order, (int) $history->id),
                time()
            );
            $this->queue($idShop, 'order_history:' . (int) $history->id, $payload);
        } catch (Throwable $e) {
            $this->logError('order status event', $e);
        }
    }

    /**
     * A merchandise return was created; its lines are added just after (see hookActionOrderReturn).
     *
     * @param array<string, mixed> $params ['object' => OrderReturn]
     */
    public function hookActionObjectOrderReturnAddAfter($params)
    {
        if (!empty($params['object'])) {
            $this->queueReturn($params['object'], false);
        }
    }

    /**
     * The return's lines are saved: the waiting event is completed with its products.
     *
     * @param array<string, mixed> $params ['orderReturn' => OrderReturn]
     */
    public function hookActionOrderReturn($params)
    {
        if (!empty($params['orderReturn'])) {
            $this->queueReturn($params['orderReturn'], true);
        }
    }

    /**
     * @param array<string, mixed> $params
     */
    public function hookActionObjectOrderStateAddAfter($params)
    {
        $this->queueOrderStatesForAllShops();
    }

    /**
     * @param array<string, mixed> $params
     */
    public function hookActionObjectOrderStateUpdateAfter($params)
    {
        $this->queueOrderStatesForAllShops();
    }

    /**
     * Sends what is due (the cron front controller).
     *
     * @param int $limit
     * @param array<int, string> $eventKeys only these, all when empty
     * @param int $timeout seconds per attempt
     *
     * @return array<string, int> counts by outcome
     */
    public function processOutbox($limit, array $eventKeys = [], $timeout = RelanceSender::TIMEOUT)
    {
        $counts = ['sent' => 0, 'retry' => 0, 'failed' => 0, 'skipped' => 0];
        $now = time();
        foreach (RelanceOutbox::due($now, $limit, $eventKeys) as $row) {
            $idShop = (int) $row['id_shop'];
            if (!$this->isConfigured($idShop) || !RelanceOutbox::claim((int) $row['id_relance_outbox'], $now)) {
                ++$counts['skipped'];
                continue;
            }
            $answer = $this->sender($idShop)->send(
                RelanceSender::endpoint($this->config(self::URL, $idShop), $this->config(self::SHOP_ID, $idShop)),
                (string) $row['webhook_id'],
                (string) $row['payload'],
                time(),
                $timeout
            );
            RelanceOutbox::apply((int) $row['id_relance_outbox'], RelanceOutbox::afterAttempt($row, $answer, time()));
            if ($answer['outcome'] === RelanceSender::SENT) {
                ++$counts['sent'];
                Configuration::updateValue(self::LAST_SUCCESS, time(), false, null, $idShop);
                continue;
            }
            ++$counts[$answer['outcome'] === RelanceSender::STOP ? 'failed' : 'retry'];
            $error = RelanceOutbox::describe($answer);
            Configuration::updateValue(
                self::LAST_ERROR,
                json_encode(['at' => time(), 'event' => $row['event_type'], 'error' => $error]),
                false,
                null,
                $idShop
            );
            if ($answer['outcome'] !== RelanceSender::RETRY) {
                PrestaShopLogger::addLog('Relance: ' . $row['event_type'] . ' ' . $error, 2, null, 'Relance', 0, true);
            }
        }

        return $counts;
    }

    /**
     * The end-of-request sending: the response is flushed first where PHP-FPM allows it.
     */
    public function flushWritten()
    {
        if (!$this->written) {
            return;
        }
        $keys = $this->written;
        $this->written = [];
        if (function_exists('fastcgi_finish_request')) {
            fastcgi_finish_request();
        }
        try {
            $this->processOutbox(self::FLUSH_LIMIT, $keys, 3);
        } catch (Throwable $e) {
            $this->logError('sending at the end of the request', $e);
        }
    }

    /**
     * The configuration page.
     *
     * @return string HTML
     */
    public function getContent()
    {
        $idShop = (int) Shop::getContextShopID();
        $notices = [];
        if (Tools::isSubmit('submitRelanceConfig')) {
            $notices = $this->saveConfiguration($idShop);
        } elseif (Tools::isSubmit('submitRelanceTest')) {
            $notices = $this->testConnection($idShop);
        } elseif (Tools::isSubmit('submitRelanceRetry')) {
            RelanceOutbox::retryFailed($idShop, time());
            $this->processOutbox(20);
            $notices[] = ['type' => 'success', 'text' => $this->l('Refused events were put back in the queue.')];
        } elseif (Tools::isSubmit('submitRelanceDiscard')) {
            RelanceOutbox::deleteFailed($idShop);
            $notices[] = ['type' => 'success', 'text' => $this->l('Refused events were deleted.')];
        } elseif (Tools::isSubmit('submitRelanceReviews')) {
            $notices = $this->saveReviewSettings($idShop);
        } elseif (Tools::isSubmit('submitRelanceReviewsRefresh')) {
            $result = $this->isConfigured($idShop) ? $this->refreshReviews($idShop)
                : ['result' => 'error', 'error' => $this->l('Save the URL, shop id and secret first.')];
            $notices[] = $result['result'] === 'error'
                ? ['type' => 'error', 'text' => $this->l('The reviews could not be refreshed; the local copy is kept:') . ' ' . $result['error']]
                : ['type' => 'success', 'text' => $this->l('The reviews are up to date.')];
        }

        $idLang = (int) $this->context->language->id;
        $selected = $this->selectedStates($idShop);
        $states = [];
        foreach (OrderState::getOrderStates($idLang) as $row) {
            if (empty($row['deleted'])) {
                $id = (int) $row['id_order_state'];
                $states[] = ['id' => $id, 'name' => $row['name'], 'checked' => $selected === null || in_array($id, $selected, true)];
            }
        }
        $lastError = json_decode((string) $this->config(self::LAST_ERROR, $idShop), true);
        $lastTest = json_decode((string) $this->config(self::LAST_TEST, $idShop), true);
        $lastSuccess = (int) $this->config(self::LAST_SUCCESS, $idShop);
        $reviewState = (new RelanceReviewsStore())->state($idShop);
        $this->context->smarty->assign([
            'relance' => [
                'action' => $this->context->link->getAdminLink('AdminModules', true, [], ['configure' => $this->name]),
                'multistore_all' => Shop::isFeatureActive() && Shop::getContext() !== Shop::CONTEXT_SHOP,
                'notices' => $notices,
                'url' => $this->config(self::URL, $idShop),
                'shop_id' => $this->config(self::SHOP_ID, $idShop),
                'secret_set' => $this->config(self::SECRET, $idShop) !== '',
                'all_states' => $selected === null,
                'states' => $states,
                'counts' => RelanceOutbox::counts($idShop),
                'failed' => RelanceOutbox::failed($idShop),
                'last_success' => $lastSuccess > 0 ? date('Y-m-d H:i:s', $lastSuccess) : '',
                'last_error' => is_array($lastError) ? $lastError + ['date' => date('Y-m-d H:i:s', (int) $lastError['at'])] : null,
                'last_test' => is_array($lastTest) ? $lastTest + ['date' => date('Y-m-d H:i:s', (int) $lastTest['at'])] : null,
                'cron_url' => $this->cronUrl(),
                'reviews' => [
                    'show_stars' => (bool) (int) $this->config(self::SHOW_STARS, $idShop),
                    'show_list' => (bool) (int) $this->config(self::SHOW_LIST, $idShop),
                    'show_in_lists' => (bool) (int) $this->config(self::SHOW_IN_LISTS, $idShop),
                    'min_rating' => max(1, (int) $this->config(self::MIN_RATING, $idShop)),
                    'secret_set' => $this->config(self::REVIEWS_SECRET, $idShop) !== '',
                    'webhook_url' => $this->context->link->getModuleLink($this->name, 'reviews', []),
                    'synced_at' => $reviewState['synced_at'] > 0 ? date('Y-m-d H:i:s', (int) $reviewState['synced_at']) : '',
                    'last_error' => (string) $reviewState['last_error'],
                ],
            ],
        ]);

        return $this->display(__FILE__, 'views/templates/admin/configure.tpl');
    }

    /**
     * @return string the URL the merchant's crontab calls
     */
    public function cronUrl()
    {
        return $this->context->link->getModuleLink($this->name, 'cron', ['token' => (string) Configuration::getGlobalValue(self::CRON_TOKEN)]);
    }

    /**
     * @param string $token
     *
     * @return bool
     */
    public function isCronToken($token)
    {
        $expected = (string) Configuration::getGlobalValue(self::CRON_TOKEN);

        return $expected !== '' && is_string($token) && hash_equals($expected, $token);
    }

    /**
     * @param int $idShop
     *
     * @return array<int, array<string, string>> notices
     */
    private function saveConfiguration($idShop)
    {
        $url = trim((string) Tools::getValue('RELANCE_URL'));
        $shopId = trim((string) Tools::getValue('RELANCE_SHOP_ID'));
        $secret = trim((string) Tools::getValue('RELANCE_SECRET'));
        $errors = [];
        if (!preg_match('#^https?://[^\s/]+#i', $url) || !Validate::isAbsoluteUrl($url)) {
            $errors[] = $this->l('The Relance URL must start with https:// (or http:// on a private network).');
        }
        if (!preg_match('/^[A-Za-z0-9_-]{1,64}$/', $shopId)) {
            $errors[] = $this->l('The shop id is the "id" Relance gave for this shop, e.g. shp_...');
        }
        if ($secret !== '' && !RelanceSigner::isValidSecret($secret)) {
            $errors[] = $this->l('The webhook secret must start with whsec_.');
        }
        if ($secret === '' && $this->config(self::SECRET, $idShop) === '') {
            $errors[] = $this->l('The webhook secret is required.');
        }
        if ($errors) {
            return array_map(function ($text) {
                return ['type' => 'error', 'text' => $text];
            }, $errors);
        }
        $states = 'all';
        if (!Tools::getValue('RELANCE_ALL_STATES')) {
            $ids = array_values(array_unique(array_map('intval', (array) Tools::getValue('RELANCE_STATES', []))));
            $states = json_encode($ids);
        }
        $this->setConfig(self::URL, $url, $idShop);
        $this->setConfig(self::SHOP_ID, $shopId, $idShop);
        $this->setConfig(self::STATES, $states, $idShop);
        if ($secret !== '') {
            $this->setConfig(self::SECRET, $secret, $idShop);
        }
        $this->queueOrderStates($idShop);

        return [['type' => 'success', 'text' => $this->l('Settings saved. The order-state catalogue is being sent to Relance.')]];
    }

    /**
     * The reviews shown on the shop: where, from which rating, and the webhook secret.
     *
     * @param int $idShop
     *
     * @return array<int, array<string, string>> notices
     */
    private function saveReviewSettings($idShop)
    {
        $secret = trim((string) Tools::getValue('RELANCE_REVIEWS_SECRET'));
        if ($secret !== '' && !RelanceSigner::isValidSecret($secret)) {
            return [['type' => 'error', 'text' => $this->l('The webhook secret must start with whsec_.')]];
        }
        foreach ([self::SHOW_STARS, self::SHOW_LIST, self::SHOW_IN_LISTS] as $key) {
            $this->setConfig($key, Tools::getValue($key) ? '1' : '0', $idShop);
        }
        $this->setConfig(self::MIN_RATING, (string) min(5, max(1, (int) Tools::getValue(self::MIN_RATING, 1))), $idShop);
        if ($secret !== '') {
            $this->setConfig(self::REVIEWS_SECRET, $secret, $idShop);
        }

        return [['type' => 'success', 'text' => $this->l('Review settings saved.')]];
    }

    /**
     * The "test connection" button: a signed ping, sent now, its answer shown.
     *
     * @param int $idShop
     *
     * @return array<int, array<string, string>>
     */
    private function testConnection($idShop)
    {
        if (!$this->isConfigured($idShop)) {
            return [['type' => 'error', 'text' => $this->l('Save the URL, shop id and secret first.')]];
        }
        $payload = RelancePayloadBuilder::encode($this->builder()->ping($this->version, _PS_VERSION_, time()));
        $answer = $this->sender($idShop)->send(
            RelanceSender::endpoint($this->config(self::URL, $idShop), $this->config(self::SHOP_ID, $idShop)),
            RelanceSigner::newMessageId(),
            $payload,
            time()
        );
        $ok = $answer['outcome'] === RelanceSender::SENT;
        $text = $ok ? 'HTTP ' . (int) $answer['status'] . ' ' . substr((string) $answer['body'], 0, 200)
            : RelanceOutbox::describe($answer);
        $this->setConfig(self::LAST_TEST, json_encode(['at' => time(), 'ok' => $ok, 'answer' => $text]), $idShop);

        return [[
            'type' => $ok ? 'success' : 'error',
            'text' => ($ok ? $this->l('Relance answered:') : $this->l('The connection test failed:')) . ' ' . $text,
        ]];
    }

    /**
     * @param OrderReturn $return
     * @param bool $withLines
     */
    private function queueReturn($return, $withLines)
    {
        try {
            $order = new Order((int) $return->id_order);
            $idShop = (int) $order->id_shop;
            if (!$this->isConfigured($idShop)) {
                return;
            }
            $details = $withLines ? OrderReturn::getOrdersReturnDetail((int) $return->id) : [];
            $payload = $this->builder()->returnRequested($return, is_array($details) ? $details : [], time());
            $key = 'order_return:' . (int) $return->id;
            if ($withLines) {
                RelanceOutbox::replacePayload($idShop, $key, RelancePayloadBuilder::encode($payload));
            }
            $this->queue($idShop, $key, $payload);
        } catch (Throwable $e) {
            $this->logError('return event', $e);
        }
    }

    private function queueOrderStatesForAllShops()
    {
        foreach (Shop::getShops(true, null, true) as $idShop) {
            $this->queueOrderStates((int) $idShop);
        }
    }

    /**
     * @param int $idShop
     */
    private function queueOrderStates($idShop)
    {
        try {
            if (!$this->isConfigured($idShop)) {
                return;
            }
            $payload = $this->builder()->orderStates(Language::getLanguages(true, $idShop), time());
            // One catalogue event per change: the key holds the time and a random part.
            $this->queue($idShop, 'order_states:' . time() . ':' . bin2hex(random_bytes(4)), $payload);
        } catch (Throwable $e) {
            $this->logError('order-state catalogue', $e);
        }
    }

    /**
     * @param int $idShop
     * @param string $eventKey
     * @param array<string, mixed> $payload
     */
    private function queue($idShop, $eventKey, array $payload)
    {
        RelanceOutbox::enqueue($idShop, $eventKey, (string) $payload['type'], RelancePayloadBuilder::encode($payload), time());
        if (!$this->written) {
            register_shutdown_function([$this, 'flushWritten']);
        }
        $this->written[] = $eventKey;
    }

    /**
     * @param int $idOrder
     * @param int $idHistory
     *
     * @return int the state of the order's history row just before this one, 0 when none
     */
    private function previousStateId($idOrder, $idHistory)
    {
        return (int) Db::getInstance()->getValue(
            'SELECT `id_order_state` FROM `' . _DB_PREFIX_ . 'order_history`
            WHERE `id_order` = ' . (int) $idOrder . ' AND `id_order_history` < ' . (int) $idHistory . '
            ORDER BY `id_order_history` DESC'
        );
    }

    /**
     * @return RelancePayloadBuilder
     */
    private function builder()
    {
        $zone = (string) Configuration::get('PS_TIMEZONE');

        return new RelancePayloadBuilder($this->context->link, $zone !== '' ? $zone : date_default_timezone_get());
    }

    /**
     * @param int $idShop
     *
     * @return RelanceSender
     */
    private function sender($idShop)
    {
        return new RelanceSender(new RelanceSigner($this->config(self::SECRET, $idShop)));
    }

    /**
     * @param int $idShop
     *
     * @return bool
     */
    private function isConfigured($idShop)
    {
        return $this->config(self::URL, $idShop) !== '' && $this->config(self::SHOP_ID, $idShop) !== ''
            && RelanceSigner::isValidSecret($this->config(self::SECRET, $idShop));
    }

    /**
     * @param int $idShop
     *
     * @return array<int, int>|null the ids to send, null for all
     */
    private function selectedStates($idShop)
    {
        $value = $this->config(self::STATES, $idShop);
        if ($value === '' || $value === 'all') {
            return null;
        }
        $ids = json_decode($value, true);

        return is_array($ids) ? array_map('intval', $ids) : null;
    }

    /**
     * @param int $idShop
     * @param int $idState
     *
     * @return bool
     */
    private function sendsState($idShop, $idState)
    {
        $selected = $this->selectedStates($idShop);

        return $selected === null || in_array($idState, $selected, true);
    }

    /**
     * @param string $key
     * @param int $idShop
     *
     * @return string
     */
    private function config($key, $idShop)
    {
        return (string) Configuration::get($key, null, null, (int) $idShop);
    }

    /**
     * @param string $key
     * @param string $value
     * @param int $idShop
     */
    private function setConfig($key, $value, $idShop)
    {
        if ((int) $idShop > 0) {
            Configuration::updateValue($key, $value, false, null, (int) $idShop);
        } else {
            Configuration::updateValue($key, $value);
        }
    }

    /**
     * @param string $what
     * @param Throwable $e
     */
    private function logError($what, $e)
    {
        PrestaShopLogger::addLog('Relance: ' . $what . ' not queued: ' . $e->getMessage(), 3, null, 'Relance', 0, true);
    }
}
