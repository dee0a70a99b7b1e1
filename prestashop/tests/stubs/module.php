<?php
/**
 * Stand-ins of what the module's hooks touch in PrestaShop (Module, Configuration, Context...),
 * loaded by the tests that call relance.php's hooks.
 */
define('_DB_PREFIX_', 'ps_');

class Configuration
{
    /** @var array<string, mixed> */
    public static $values = [];

    public static function get($key, $idLang = null, $idShopGroup = null, $idShop = null)
    {
        return isset(self::$values[$key]) ? self::$values[$key] : false;
    }

    public static function getGlobalValue($key)
    {
        return self::get($key);
    }
}

class Tools
{
    /** @var array<string, mixed> */
    public static $query = [];

    public static function getValue($key, $default = false)
    {
        return isset(self::$query[$key]) ? self::$query[$key] : $default;
    }
}

class PrestaShopLogger
{
    /** @var array<int, string> */
    public static $logs = [];

    public static function addLog($message)
    {
        self::$logs[] = $message;
    }
}

class FrontController
{
}

class Module
{
    public $name;
    public $context;

    public function __construct()
    {
        $this->context = Context::$current;
    }

    public function l($string)
    {
        return $string;
    }

    public function display($file, $template)
    {
        return $this->context->smarty->fetch(dirname($file) . '/' . $template);
    }
}

class Context
{
    /** @var Context */
    public static $current;
    public $shop;
    public $language;
    public $link;
    public $smarty;
    public $controller;
}
