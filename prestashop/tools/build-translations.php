<?php
/**
 * Writes relance/translations/{en,fr,it,es,de}.php from tools/i18n.json, in PrestaShop's
 * module convention: $_MODULE['<{relance}prestashop>' . file . '_' . md5(source)] = text.
 *
 * Usage: php prestashop/tools/build-translations.php [--check]
 * --check writes nothing, and exits 1 when a string of the module has no translation or a
 * file is not up to date.
 */
$root = dirname(__DIR__);
$catalogue = json_decode((string) file_get_contents(__DIR__ . '/i18n.json'), true);
$languages = ['en', 'fr', 'it', 'es', 'de'];

/** @return array<int, array{0: string, 1: string}> [file basename, source string] */
function relance_strings($root)
{
    $found = [];
    $tpl = "/\\{l s='((?:[^'\\\\]|\\\\.)*)' mod='relance'\\}/";
    $sources = [
        'relance' => ['relance/relance.php', "/\\\$this->l\\('((?:[^'\\\\]|\\\\.)*)'\\)/"],
        'configure' => ['relance/views/templates/admin/configure.tpl', "/\\{l s='((?:[^'\\\\]|\\\\.)*)' mod='relance'\\}/"],
        'product-stars' => ['relance/views/templates/hook/product-stars.tpl', $tpl],
        'product-reviews' => ['relance/views/templates/hook/product-reviews.tpl', $tpl],
        'list-stars' => ['relance/views/templates/hook/list-stars.tpl', $tpl],
    ];
    foreach ($sources as $file => $source) {
        preg_match_all($source[1], (string) file_get_contents($root . '/' . $source[0]), $matches);
        foreach (array_unique($matches[1]) as $string) {
            $found[] = [$file, str_replace("\\'", "'", $string)];
        }
    }

    return $found;
}

$check = in_array('--check', $argv, true);
$failed = false;
$strings = relance_strings($root);
foreach ($strings as $entry) {
    if (!isset($catalogue[$entry[1]])) {
        fwrite(STDERR, "No translation in tools/i18n.json for: {$entry[1]}\n");
        $failed = true;
    }
}
foreach ($languages as $language) {
    $text = "<?php\n\nglobal \$_MODULE;\n\$_MODULE = [];\n";
    foreach ($strings as $entry) {
        list($file, $string) = $entry;
        if ($language === 'en') {
            $translation = $string;
        } elseif (isset($catalogue[$string][$language])) {
            $translation = $catalogue[$string][$language];
        } else {
            if (isset($catalogue[$string])) {
                fwrite(STDERR, "No '$language' translation for: $string\n");
                $failed = true;
            }
            continue;
        }
        $key = '<{relance}prestashop>' . $file . '_' . md5($string);
        $text .= '$_MODULE[' . var_export($key, true) . '] = ' . var_export($translation, true) . ";\n";
    }
    $path = $root . '/relance/translations/' . $language . '.php';
    if ($check) {
        if (!is_file($path) || file_get_contents($path) !== $text) {
            fwrite(STDERR, "relance/translations/$language.php is not up to date: run php prestashop/tools/build-translations.php\n");
            $failed = true;
        }
    } else {
        file_put_contents($path, $text);
    }
}
exit($failed ? 1 : 0);
