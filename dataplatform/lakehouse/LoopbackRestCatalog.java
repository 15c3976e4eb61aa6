/*
 * Runs Apache Iceberg's REST catalog server (org.apache.iceberg.rest.RESTCatalogServer, the
 * server of the apache/iceberg-rest-fixture image) on a loopback address.
 *
 * RESTCatalogServer listens on every interface and offers no way to choose one, while the
 * platform opens ports on loopback only. So this launcher does what RESTCatalogServer.start
 * does -- the same backend catalog built from the same CATALOG_* environment variables, the
 * same adapter and servlet, gzip -- with a Jetty connector bound to the given host. The
 * server's classes are package-private, hence the reflection.
 *
 * Run as a single source file: java -cp '<jars>/*' LoopbackRestCatalog.java HOST PORT
 */

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class LoopbackRestCatalog {
  public static void main(String[] args) throws Exception {
    String host = args[0];
    int port = Integer.parseInt(args[1]);

    Class<?> serverClass = Class.forName("org.apache.iceberg.rest.RESTCatalogServer");
    Constructor<?> newServer = serverClass.getDeclaredConstructor();
    newServer.setAccessible(true);
    Method initialize = serverClass.getDeclaredMethod("initializeBackendCatalog");
    initialize.setAccessible(true);
    Object catalogContext = initialize.invoke(newServer.newInstance());

    Class<?> adapterClass = Class.forName("org.apache.iceberg.rest.RESTServerCatalogAdapter");
    Constructor<?> newAdapter = adapterClass.getDeclaredConstructor(catalogContext.getClass());
    newAdapter.setAccessible(true);
    RESTCatalogAdapter adapter = (RESTCatalogAdapter) newAdapter.newInstance(catalogContext);

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    context.insertHandler(new GzipHandler());

    Server http = new Server();
    ServerConnector connector = new ServerConnector(http);
    connector.setHost(host);
    connector.setPort(port);
    http.addConnector(connector);
    http.setHandler(context);
    http.start();
    System.out.println("Iceberg REST catalog listening on http://" + host + ":" + port);
    http.join();
  }
}
