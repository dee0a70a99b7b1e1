<?php
require __DIR__ . '/stubs/prestashop.php';
require __DIR__ . '/Php72Check.php';
foreach (glob(dirname(__DIR__) . '/relance/classes/Relance*.php') as $file) {
    require_once $file;
}
