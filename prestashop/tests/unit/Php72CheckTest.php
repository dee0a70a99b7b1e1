<?php
use PHPUnit\Framework\TestCase;

class Php72CheckTest extends TestCase
{
    /**
     * @return array<string, array{0: string}>
     */
    public function newerConstructs()
    {
        return [
            'arrow function' => ['$f = fn($x) => $x;'],
            'typed property' => ['class A { private int $x; }'],
            'nullable typed property' => ['class A { public static ?A $x; }'],
            'match' => ['$x = match($y) { 1 => 2 };'],
            'nullsafe' => ['$x = $y?->z;'],
            'named argument' => ['foo(a: 1);'],
            'enum' => ['enum Suit { case Hearts; }'],
            'readonly' => ['class A { public function __construct(public readonly int $x) {} }'],
            'union type' => ['function f(int|string $x) {}'],
            'union return type' => ['function f(): int|false {}'],
            'mixed return type' => ['function f(): mixed {}'],
            'static return type' => ['class A { function f(): static {} }'],
            'numeric separator' => ['$x = 1_000;'],
            'coalesce assignment' => ['$x ??= 1;'],
            'trailing comma in a call' => ['foo(1, 2,);'],
            'trailing comma in parameters' => ['function f($a, $b,) {}'],
            'spread in an array' => ['$x = [...$a];'],
            'promotion' => ['class A { function __construct(private $x) {} }'],
            'attribute' => ['#[Attr] function f() {}'],
            'catch without variable' => ['try {} catch (Exception) {}'],
            'throw expression' => ['$x = $y ?? throw new Exception();'],
            'first-class callable' => ['$f = strlen(...);'],
            'new function' => ['if (str_contains($a, "b")) {}'],
            'object class' => ['$x = $y::class;'],
        ];
    }

    /**
     * @dataProvider newerConstructs
     */
    public function testFindsConstructsNewerThan72($code)
    {
        $this->assertNotEmpty(Php72Check::check("<?php\n" . $code), $code);
    }

    public function testAcceptsPhp72Code()
    {
        $code = <<<'PHP'
<?php
class A extends B
{
    const X = [1, 2,];
    private static $y = array(1, 2,);
    public $z;
    public function f(?int $a, string $b = 'x|y', array &$c = [], ...$rest): ?string
    {
        $d = $a ? B::X : C;
        $e = function ($x) use (&$d) { return $x | 1; };
        $f = array_merge([1], ...[[2]]);
        list($g, $h) = [1, 2];
        foo(...$rest);
        $i = $a ?? 0;
        try { throw new E(); } catch (E | F $exception) {}
        return static::class . self::class . A::class;
    }
}
PHP;
        $this->assertSame([], Php72Check::check($code));
    }

    public function testTheModuleItselfIsPhp72()
    {
        $root = dirname(__DIR__, 2);
        $files = array_merge(
            glob($root . '/relance/*.php'),
            glob($root . '/relance/*/*.php'),
            glob($root . '/relance/*/*/*.php'),
            glob($root . '/tools/*.php')
        );
        $this->assertGreaterThan(10, count($files));
        foreach ($files as $file) {
            $this->assertSame([], Php72Check::check((string) file_get_contents($file)), $file);
        }
    }
}
