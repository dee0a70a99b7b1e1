<?php
use PHPUnit\Framework\TestCase;

class PayloadBuilderTest extends TestCase
{
    protected function setUp(): void
    {
        $flags = ['paid' => true, 'shipped' => true, 'delivery' => true, 'logable' => true];
        Fixtures::$rows = [
            'Order' => [1042 => [
                'reference' => 'XKBKNABJK', 'id_lang' => 1, 'id_shop' => 2, 'id_customer' => 7, 'id_currency' => 1,
                'id_address_delivery' => 30, 'total_paid' => 59.9, 'date_add' => '2026-11-14 18:02:11',
                'products' => [
                    ['id_order_detail' => 900, 'product_id' => 12, 'product_attribute_id' => 0, 'product_name' => 'Stoneware mug',
                        'product_reference' => 'MUG-01', 'product_quantity' => 2, 'product_ean13' => '', 'product_upc' => '012345678905',
                        'product_mpn' => 'PM-MUG-1', ],
                    ['id_order_detail' => 901, 'product_id' => 99, 'product_attribute_id' => 4, 'product_name' => 'Deleted teapot - Blue',
                        'product_reference' => 'TEA-02', 'product_quantity' => 1, 'product_ean13' => '3760000000017', ],
                ],
            ]],
            'Customer' => [7 => ['email' => 'marie@example.fr', 'firstname' => 'Marie', 'lastname' => 'Dupont', 'newsletter' => '1', 'groups' => ['3', '5']]],
            'Currency' => [1 => ['iso_code' => 'EUR']],
            'Address' => [30 => ['id_country' => 8]],
            'OrderState' => [
                4 => ['name' => [1 => 'Expédié', 2 => 'Shipped']] + $flags,
                5 => ['name' => [1 => 'Livré', 2 => 'Delivered']] + $flags,
            ],
            'OrderHistory' => [5531 => ['id_order' => 1042, 'id_order_state' => 5, 'date_add' => '2026-11-20 10:15:00']],
            'Product' => [12 => ['name' => [1 => 'Mug en grès', 2 => 'Stoneware mug'], 'link_rewrite' => [1 => 'mug-en-gres', 2 => 'stoneware-mug'], 'id_manufacturer' => 3]],
            'OrderReturn' => [77 => ['id_order' => 1042, 'state' => 1, 'date_add' => '2026-12-01 09:00:00']],
        ];
        Fixtures::$covers = [12 => ['id_image' => '51']];
    }

    private function builder()
    {
        return new RelancePayloadBuilder(new Link(), 'Europe/Paris');
    }

    public function testOrderStatusChangedHasTheContractShape()
    {
        $payload = $this->builder()->orderStatusChanged(new OrderHistory(5531), 4, strtotime('2026-11-20T09:15:00Z'));
        $this->assertSame('order.status_changed', $payload['type']);
        $this->assertSame('2026-11-20T10:15:00+01:00', $payload['timestamp']);
        $data = $payload['data'];
        $this->assertSame(
            ['id' => 1042, 'reference' => 'XKBKNABJK', 'id_lang' => 1, 'id_shop' => 2, 'total_paid' => '59.90',
                'currency' => 'EUR', 'date_add' => '2026-11-14T18:02:11+01:00', ],
            $data['order']
        );
        $this->assertSame(
            ['id' => 7, 'email' => 'marie@example.fr', 'firstname' => 'Marie', 'lastname' => 'Dupont', 'language' => 'fr',
                'country' => 'FR', 'group_ids' => [3, 5], 'newsletter' => true, ],
            $data['customer']
        );
        $this->assertSame(['id' => 5531, 'date_add' => '2026-11-20T10:15:00+01:00'], $data['history']);
        $this->assertSame(['id' => 5, 'name' => 'Livré', 'paid' => true, 'shipped' => true, 'delivery' => true, 'logable' => true], $data['new_state']);
        $this->assertSame('Expédié', $data['old_state']['name']);
    }

    public function testProductsInTheOrderLanguageWithGtinMpnAndBrand()
    {
        $products = $this->builder()->orderStatusChanged(new OrderHistory(5531), 4, 0)['data']['products'];
        $this->assertSame([
            'id' => 12, 'id_product_attribute' => 0, 'name' => 'Mug en grès', 'reference' => 'MUG-01', 'quantity' => 2,
            'url' => 'https://shop.example/fr/12-mug-en-gres.html',
            'image_url' => 'https://shop.example/51-large_default/mug-en-gres.jpg',
            'gtin' => '012345678905', 'mpn' => 'PM-MUG-1', 'brand' => 'Poterie Martin',
        ], $products[0]);
        // A product deleted from the catalogue: the order line's name, no URL, EAN-13 as gtin.
        $this->assertSame([
            'id' => 99, 'id_product_attribute' => 4, 'name' => 'Deleted teapot - Blue', 'reference' => 'TEA-02',
            'quantity' => 1, 'url' => null, 'image_url' => null, 'gtin' => '3760000000017',
        ], $products[1]);
    }

    public function testNoPreviousStateAndNoOptionalCustomerFields()
    {
        Fixtures::$rows['Order'][1042]['id_address_delivery'] = 0;
        Fixtures::$rows['Order'][1042]['id_lang'] = 2;
        $data = $this->builder()->orderStatusChanged(new OrderHistory(5531), 0, 0)['data'];
        $this->assertNull($data['old_state']);
        $this->assertArrayNotHasKey('country', $data['customer']);
        $this->assertSame('en', $data['customer']['language']);
        $this->assertSame('Delivered', $data['new_state']['name']);
        $this->assertSame('Stoneware mug', $data['products'][0]['name']);
    }

    public function testReturnRequestedListsOnlyTheReturnedLines()
    {
        $payload = $this->builder()->returnRequested(new OrderReturn(77), [
            ['id_order_detail' => 901, 'product_quantity' => 1],
        ], 0);
        $this->assertSame('order.return_requested', $payload['type']);
        $this->assertSame(1042, $payload['data']['order']['id']);
        $this->assertSame(['id' => 77, 'date_add' => '2026-12-01T09:00:00+01:00', 'state_id' => 1], $payload['data']['return']);
        $this->assertCount(1, $payload['data']['products']);
        $this->assertSame(99, $payload['data']['products'][0]['id']);
    }

    public function testOrderStatesCatalogueHasNamesByIso()
    {
        Fixtures::$states = [
            1 => [['id_order_state' => 5, 'name' => 'Livré', 'paid' => '1', 'shipped' => '1', 'delivery' => '1', 'logable' => '1', 'deleted' => '0'],
                ['id_order_state' => 6, 'name' => 'Annulé', 'paid' => '0', 'shipped' => '0', 'delivery' => '0', 'logable' => '0', 'deleted' => '0'],
                ['id_order_state' => 20, 'name' => 'Vieux', 'paid' => '0', 'shipped' => '0', 'delivery' => '0', 'logable' => '0', 'deleted' => '1'], ],
            2 => [['id_order_state' => 5, 'name' => 'Delivered', 'paid' => '1', 'shipped' => '1', 'delivery' => '1', 'logable' => '1', 'deleted' => '0'],
                ['id_order_state' => 6, 'name' => 'Canceled', 'paid' => '0', 'shipped' => '0', 'delivery' => '0', 'logable' => '0', 'deleted' => '0'], ],
        ];
        $payload = $this->builder()->orderStates([['id_lang' => 1, 'iso_code' => 'fr'], ['id_lang' => 2, 'iso_code' => 'EN']], 0);
        $this->assertSame(
            '{"type":"shop.order_states","timestamp":"1970-01-01T01:00:00+01:00","data":{"states":['
            . '{"id":5,"names":{"fr":"Livré","en":"Delivered"},"paid":true,"shipped":true,"delivery":true,"logable":true},'
            . '{"id":6,"names":{"fr":"Annulé","en":"Canceled"},"paid":false,"shipped":false,"delivery":false,"logable":false}]}}',
            RelancePayloadBuilder::encode($payload)
        );
    }

    public function testEncodeKeepsUnicodeAndSlashesAndRefusesInvalidUtf8()
    {
        $this->assertSame('{"a":"Livré https://x/y"}', RelancePayloadBuilder::encode(['a' => 'Livré https://x/y']));
        $this->expectException(RuntimeException::class);
        RelancePayloadBuilder::encode(['a' => "\xff"]);
    }
}
