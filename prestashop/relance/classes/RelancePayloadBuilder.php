<?php
/**
 * Relance - builds the bodies of the events the module sends (the contract's shapes).
 *
 * Only PrestaShop's object model is read here (Order, Customer, OrderState, Product, Link...);
 * what needs SQL (the previous state of an order) is given by the caller.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelancePayloadBuilder
{
    /** @var Link */
    private $link;

    /** @var DateTimeZone the shop's zone: PrestaShop stores local wall-clock times */
    private $timezone;

    /** @var string image type of the cover image URL */
    private $imageType;

    /**
     * @param Link $link
     * @param string $timezone IANA zone of the shop (PS_TIMEZONE)
     * @param string $imageType e.g. "large_default"
     */
    public function __construct($link, $timezone, $imageType = 'large_default')
    {
        $this->link = $link;
        $this->timezone = new DateTimeZone($timezone ?: 'UTC');
        $this->imageType = $imageType;
    }

    /**
     * The body of order.status_changed for one order-history row.
     *
     * @param OrderHistory $history the new row (its id and date are known after add())
     * @param int $previousStateId the order's state before this row, 0 when none
     * @param int $now Unix seconds of the event
     *
     * @return array<string, mixed>
     */
    public function orderStatusChanged($history, $previousStateId, $now)
    {
        $order = new Order((int) $history->id_order);
        $idLang = (int) $order->id_lang;

        return [
            'type' => 'order.status_changed',
            'timestamp' => $this->isoFromUnix($now),
            'data' => [
                'order' => $this->order($order),
                'customer' => $this->customer($order),
                'history' => [
                    'id' => (int) $history->id,
                    'date_add' => $this->isoFromLocal($history->date_add),
                ],
                'new_state' => $this->state((int) $history->id_order_state, $idLang),
                'old_state' => $previousStateId > 0 ? $this->state((int) $previousStateId, $idLang) : null,
                'products' => $this->products($order, null),
            ],
        ];
    }

    /**
     * The body of order.return_requested for one merchandise return.
     *
     * @param OrderReturn $return
     * @param array<int, array<string, mixed>> $details rows of order_return_detail
     *                                                  (id_order_detail, product_quantity)
     * @param int $now
     *
     * @return array<string, mixed>
     */
    public function returnRequested($return, array $details, $now)
    {
        $order = new Order((int) $return->id_order);
        $quantities = [];
        foreach ($details as $detail) {
            $idDetail = (int) $detail['id_order_detail'];
            $quantities[$idDetail] = (isset($quantities[$idDetail]) ? $quantities[$idDetail] : 0)
                + (int) $detail['product_quantity'];
        }

        return [
            'type' => 'order.return_requested',
            'timestamp' => $this->isoFromUnix($now),
            'data' => [
                'order' => $this->order($order),
                'customer' => $this->customer($order),
                'return' => [
                    'id' => (int) $return->id,
                    'date_add' => $this->isoFromLocal($return->date_add),
                    'state_id' => (int) $return->state,
                ],
                'products' => $this->products($order, $quantities),
            ],
        ];
    }

    /**
     * The body of shop.order_states: every state, its names in the shop's languages.
     *
     * @param array<int, array<string, mixed>> $languages rows with id_lang and iso_code
     * @param int $now
     *
     * @return array<string, mixed>
     */
    public function orderStates(array $languages, $now)
    {
        $states = [];
        foreach ($languages as $language) {
            $iso = strtolower((string) $language['iso_code']);
            foreach (OrderState::getOrderStates((int) $language['id_lang']) as $row) {
                if (!empty($row['deleted'])) {
                    continue;
                }
                $id = (int) $row['id_order_state'];
                if (!isset($states[$id])) {
                    $states[$id] = [
                        'id' => $id,
                        'names' => [],
                        'paid' => (bool) $row['paid'],
                        'shipped' => (bool) $row['shipped'],
                        'delivery' => (bool) $row['delivery'],
                        'logable' => (bool) $row['logable'],
                    ];
                }
                $states[$id]['names'][$iso] = (string) $row['name'];
            }
        }
        ksort($states);
        foreach ($states as $id => $state) {
            // An empty PHP array encodes as [], the contract wants an object.
            $states[$id]['names'] = (object) $state['names'];
        }

        return [
            'type' => 'shop.order_states',
            'timestamp' => $this->isoFromUnix($now),
            'data' => ['states' => array_values($states)],
        ];
    }

    /**
     * The body of the connection test.
     *
     * @param string $moduleVersion
     * @param string $psVersion
     * @param int $now
     *
     * @return array<string, mixed>
     */
    public function ping($moduleVersion, $psVersion, $now)
    {
        return [
            'type' => 'ping',
            'timestamp' => $this->isoFromUnix($now),
            'data' => ['module_version' => (string) $moduleVersion, 'prestashop_version' => (string) $psVersion],
        ];
    }

    /**
     * JSON exactly as sent: UTF-8, unescaped slashes and Unicode.
     *
     * @param array<string, mixed> $payload
     *
     * @return string
     *
     * @throws RuntimeException when the payload cannot be encoded (invalid UTF-8)
     */
    public static function encode(array $payload)
    {
        $json = json_encode($payload, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
        if ($json === false) {
            throw new RuntimeException('Cannot encode the event as JSON: ' . json_last_error_msg());
        }

        return $json;
    }

    /**
     * @param Order $order
     *
     * @return array<string, mixed>
     */
    private function order($order)
    {
        $currency = new Currency((int) $order->id_currency);

        return [
            'id' => (int) $order->id,
            'reference' => (string) $order->reference,
            'id_lang' => (int) $order->id_lang,
            'id_shop' => (int) $order->id_shop,
            'total_paid' => number_format((float) $order->total_paid, 2, '.', ''),
            'currency' => (string) $currency->iso_code,
            'date_add' => $this->isoFromLocal($order->date_add),
        ];
    }

    /**
     * @param Order $order
     *
     * @return array<string, mixed>
     */
    private function customer($order)
    {
        $customer = new Customer((int) $order->id_customer);
        $data = [
            'id' => (int) $customer->id,
            'email' => (string) $customer->email,
            'firstname' => (string) $customer->firstname,
            'lastname' => (string) $customer->lastname,
            'language' => strtolower((string) Language::getIsoById((int) $order->id_lang)),
        ];
        if ((int) $order->id_address_delivery > 0) {
            $address = new Address((int) $order->id_address_delivery);
            $country = (int) $address->id_country > 0 ? Country::getIsoById((int) $address->id_country) : '';
            if ($country) {
                $data['country'] = strtoupper((string) $country);
            }
        }
        $groups = $customer->getGroups();
        if (is_array($groups)) {
            $data['group_ids'] = array_values(array_map('intval', $groups));
        }
        $data['newsletter'] = (bool) $customer->newsletter;

        return $data;
    }

    /**
     * @param int $idState
     * @param int $idLang
     *
     * @return array<string, mixed>
     */
    private function state($idState, $idLang)
    {
        $state = new OrderState($idState, $idLang);

        return [
            'id' => $idState,
            'name' => is_array($state->name) ? (string) reset($state->name) : (string) $state->name,
            'paid' => (bool) $state->paid,
            'shipped' => (bool) $state->shipped,
            'delivery' => (bool) $state->delivery,
            'logable' => (bool) $state->logable,
        ];
    }

    /**
     * The order's lines; with $quantities (id_order_detail => quantity), only those lines,
     * with those quantities (a return).
     *
     * @param Order $order
     * @param array<int, int>|null $quantities
     *
     * @return array<int, array<string, mixed>>
     */
    private function products($order, $quantities)
    {
        $idLang = (int) $order->id_lang;
        $idShop = (int) $order->id_shop;
        $products = [];
        foreach ($order->getProducts() as $row) {
            $idDetail = isset($row['id_order_detail']) ? (int) $row['id_order_detail'] : 0;
            if ($quantities !== null && !isset($quantities[$idDetail])) {
                continue;
            }
            $idProduct = (int) $row['product_id'];
            $idAttribute = (int) $row['product_attribute_id'];
            $product = new Product($idProduct, false, $idLang, $idShop);
            $exists = (int) $product->id > 0;
            $name = $exists && is_string($product->name) && $product->name !== ''
                ? $product->name : (string) $row['product_name'];
            $item = [
                'id' => $idProduct,
                'id_product_attribute' => $idAttribute,
                'name' => $name,
                'reference' => (string) $row['product_reference'],
                'quantity' => $quantities !== null ? $quantities[$idDetail] : (int) $row['product_quantity'],
                'url' => $exists ? (string) $this->link->getProductLink($product, null, null, null, $idLang, $idShop, $idAttribute) : null,
                'image_url' => $exists ? $this->coverUrl($product) : null,
            ];
            $gtin = self::firstNonEmpty($row, ['product_ean13', 'product_upc']);
            if ($gtin !== '') {
                $item['gtin'] = $gtin;
            }
            $mpn = self::firstNonEmpty($row, ['product_mpn']);
            if ($mpn === '' && $exists && !empty($product->mpn)) {
                $mpn = (string) $product->mpn;
            }
            if ($mpn !== '') {
                $item['mpn'] = $mpn;
            }
            $idManufacturer = $exists ? (int) $product->id_manufacturer : 0;
            if ($idManufacturer > 0) {
                $brand = Manufacturer::getNameById($idManufacturer);
                if (is_string($brand) && $brand !== '') {
                    $item['brand'] = $brand;
                }
            }
            $products[] = $item;
        }

        return $products;
    }

    /**
     * @param Product $product
     *
     * @return string|null
     */
    private function coverUrl($product)
    {
        $cover = Product::getCover((int) $product->id);
        if (!is_array($cover) || empty($cover['id_image'])) {
            return null;
        }
        $rewrite = is_array($product->link_rewrite) ? reset($product->link_rewrite) : $product->link_rewrite;

        return (string) $this->link->getImageLink((string) $rewrite, (string) $cover['id_image'], $this->imageType);
    }

    /**
     * @param array<string, mixed> $row
     * @param array<int, string> $keys
     *
     * @return string
     */
    private static function firstNonEmpty(array $row, array $keys)
    {
        foreach ($keys as $key) {
            if (isset($row[$key]) && trim((string) $row[$key]) !== '') {
                return trim((string) $row[$key]);
            }
        }

        return '';
    }

    /**
     * A PrestaShop date (local wall-clock time of the shop) as ISO 8601 with its offset.
     *
     * @param string $local "Y-m-d H:i:s"
     *
     * @return string|null
     */
    public function isoFromLocal($local)
    {
        if (!$local || strpos((string) $local, '0000-00-00') === 0) {
            return null;
        }
        $date = DateTime::createFromFormat('Y-m-d H:i:s', (string) $local, $this->timezone);
        if ($date === false) {
            return null;
        }

        return $date->format('Y-m-d\TH:i:sP');
    }

    /**
     * @param int $unix
     *
     * @return string
     */
    public function isoFromUnix($unix)
    {
        $date = new DateTime('@' . (int) $unix);
        $date->setTimezone($this->timezone);

        return $date->format('Y-m-d\TH:i:sP');
    }
}
