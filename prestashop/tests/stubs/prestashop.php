<?php
/**
 * Minimal stand-ins of the PrestaShop classes the payload builder reads. Each loads its
 * fields from Fixtures::$rows[class][id]; unknown ids load as empty objects (id 0), like
 * PrestaShop's ObjectModel does for a missing row.
 */
define('_PS_VERSION_', '8.1.0');

class Fixtures
{
    /** @var array<string, array<int, array<string, mixed>>> */
    public static $rows = [];
    /** @var array<int, array<string, mixed>> id_product => cover row */
    public static $covers = [];
    /** @var array<int, array<int, array<string, mixed>>> id_lang => rows of OrderState::getOrderStates */
    public static $states = [];
}

abstract class StubObject
{
    public $id = 0;

    public function __construct($id = null)
    {
        $class = get_class($this);
        if ($id && isset(Fixtures::$rows[$class][(int) $id])) {
            foreach (Fixtures::$rows[$class][(int) $id] as $name => $value) {
                $this->$name = $value;
            }
            $this->id = (int) $id;
        }
    }
}

class OrderHistory extends StubObject
{
    public $id_order;
    public $id_order_state;
    public $date_add;
}

class Order extends StubObject
{
    public $reference;
    public $id_lang;
    public $id_shop;
    public $id_customer;
    public $id_currency;
    public $id_address_delivery;
    public $total_paid;
    public $date_add;
    public $products = [];

    public function getProducts()
    {
        return $this->products;
    }
}

class Customer extends StubObject
{
    public $email;
    public $firstname;
    public $lastname;
    public $newsletter;
    public $groups = [];

    public function getGroups()
    {
        return $this->groups;
    }
}

class OrderState extends StubObject
{
    public $name;
    public $paid;
    public $shipped;
    public $delivery;
    public $logable;

    public function __construct($id = null, $idLang = null)
    {
        parent::__construct($id);
        if (is_array($this->name)) {
            $this->name = $this->name[$idLang];
        }
    }

    public static function getOrderStates($idLang)
    {
        return Fixtures::$states[$idLang];
    }
}

class OrderReturn extends StubObject
{
    public $id_order;
    public $state;
    public $date_add;
}

class Currency extends StubObject
{
    public $iso_code;
}

class Address extends StubObject
{
    public $id_country;
}

class Country
{
    public static function getIsoById($id)
    {
        return [8 => 'FR', 10 => 'IT'][$id] ?? false;
    }
}

class Language
{
    public static function getIsoById($id)
    {
        return [1 => 'fr', 2 => 'en'][$id] ?? false;
    }
}

class Manufacturer
{
    public static function getNameById($id)
    {
        return [3 => 'Poterie Martin'][$id] ?? false;
    }
}

class Product extends StubObject
{
    public $name;
    public $link_rewrite;
    public $id_manufacturer = 0;
    public $mpn = '';

    public function __construct($id = null, $full = false, $idLang = null, $idShop = null)
    {
        parent::__construct($id);
        if (is_array($this->name)) {
            $this->name = $this->name[$idLang];
            $this->link_rewrite = $this->link_rewrite[$idLang];
        }
    }

    public static function getCover($id)
    {
        return Fixtures::$covers[$id] ?? false;
    }
}

class Link
{
    /** @var array<int, array<int, mixed>> */
    public $calls = [];

    public function getProductLink($product, $alias = null, $category = null, $ean13 = null, $idLang = null, $idShop = null, $ipa = 0)
    {
        $this->calls[] = ['product', is_object($product) ? $product->id : $product, $idLang, $idShop, $ipa];

        return 'https://shop.example/' . ($idLang === 1 ? 'fr' : 'en') . '/' . $product->id . '-' . $product->link_rewrite . '.html';
    }

    public function getImageLink($rewrite, $ids, $type = null)
    {
        return 'https://shop.example/' . $ids . '-' . $type . '/' . $rewrite . '.jpg';
    }
}
