<?php
// Rendered per request, so the hostname is the serving container's.
$hostname = htmlspecialchars(gethostname(), ENT_QUOTES);
$links = [];
foreach (getenv() as $key => $value) {
    // Docker links show up as NAME_PORT_80_TCP=tcp://ip:port, as in tutum's page.
    if (preg_match('/^(.+)_PORT_(\d+)_TCP$/', $key, $m)) {
        $links[] = htmlspecialchars(strtolower($m[1]) . " listening in {$m[2]} available at $value", ENT_QUOTES);
    }
}
?>
<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>Hello world!</title>
    <style>
        body { background-color: white; text-align: center; padding: 50px;
               font-family: "Open Sans", "Helvetica Neue", Helvetica, Arial, sans-serif; }
    </style>
</head>
<body>
    <h1>Hello world!</h1>
    <h3>My hostname is <?php echo $hostname; ?></h3>
<?php if ($links) { ?>
    <h3>Links found</h3>
<?php foreach ($links as $link) { ?>
    <b><?php echo $link; ?></b><br />
<?php } } ?>
</body>
</html>
